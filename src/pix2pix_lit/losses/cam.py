"""U-GAT-IT's CAM loss (Kim et al. 2020, Sec. 2.2) on a generator's auxiliary classifier η_s,
for the objectives that train one: U-GAT-IT's, and pix2pix's with ``loss.lambda_cam`` > 0.

The generators that have such a classifier (``model=ugatit``, ``ugatit_light``) return its
logits beside the image from ``forward_with_cam``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError

#: (η(source), η(target)): a generator's CAM logits on its source and its target domain
CAMLogits = tuple[Tensor, Tensor]


def check_cam_generators(needed_by: str, *generators: nn.Module) -> None:
    """Raise :class:`ConfigError` (``needed_by``: the objective or key that asks for the CAM
    loss) unless every one of ``generators`` has a CAM classifier."""
    for generator in generators:
        if not hasattr(generator, "forward_with_cam"):
            raise ConfigError(
                f"{needed_by} needs generators with a CAM classifier (model=ugatit or "
                f"ugatit_light), not {type(generator).__name__}"
            )


def run_with_cam(generator: nn.Module, images: Tensor) -> tuple[Tensor, Tensor]:
    """The generator's output for ``images`` and its CAM logits η(images)."""
    output, logit, _ = generator.forward_with_cam(images)
    return output, logit


def domain_classification_loss(source_logit: Tensor, target_logit: Tensor) -> Tensor:
    """U-GAT-IT's L_cam^{s→t} = −E_{x∼X_s}[log η_s(x)] − E_{x∼X_t}[log(1 − η_s(x))].

    η_s is the generator's auxiliary classifier; its logits on the generator's own source
    domain should read 1 and on the target domain 0.
    """
    source, target = source_logit.float(), target_logit.float()
    bce = F.binary_cross_entropy_with_logits
    return bce(source, torch.ones_like(source)) + bce(target, torch.zeros_like(target))
