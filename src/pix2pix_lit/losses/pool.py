"""History of generated images shown to the discriminator (Shrivastava et al. 2017)."""

from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """Keeps up to ``pool_size`` past fakes; each query returns a batch mixing new and old.

    For each image of the batch: while the pool is filling up the image is stored and
    returned; afterwards, with probability ½ a random stored image is returned and replaced
    by the new one, otherwise the new image itself. ``pool_size=0`` disables the pool.
    Draws use torch's global generator, so ``seed_everything`` makes them repeatable.
    """

    def __init__(self, pool_size: int = 0):
        if pool_size < 0:
            raise ValueError(f"loss.pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """Return a batch of the same shape as ``images`` (which must be detached)."""
        if self.pool_size == 0:
            return images
        out = []
        for image in images.unbind(0):
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                idx = int(torch.randint(len(self.images), ()))
                out.append(self.images[idx])
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)
