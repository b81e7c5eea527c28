"""FCN-score of labels → photo translations (Isola et al. 2017, Sec. 4.2).

A segmenter trained on real photos (``task=segmenter``, :class:`~pix2pix_lit.tasks.Segmenter`)
labels the generated photos; its labels are compared with the label maps the photos were
generated from. "If the generated images are realistic, classifiers trained on real images
will be able to classify the synthesized image correctly as well." The scores are those of
:mod:`pix2pix_lit.metrics.labels` (per-pixel accuracy, per-class accuracy, class IoU) over the
split's summed confusion matrix; scored on the real photos, they are the segmenter's own test
scores, the "ground truth" ceiling of the paper's tables.

The input label maps are colour images (the facades right halves); their classes are the
nearest colours of the segmenter's palette, the same rule its training targets came from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from pix2pix_lit.checkpoint_file import CONFIG_KEY, read_checkpoint
from pix2pix_lit.errors import ConfigError, DataError
from pix2pix_lit.metrics.labels import (
    Palette,
    class_indices,
    confusion_matrix,
    label_scores,
    per_class_scores,
)

#: prefix of the FCN-score metrics next to L1/PSNR/SSIM (``FCN/pixel_accuracy``...)
PREFIX = "FCN/"


def segment(network: nn.Module, photos: Tensor) -> Tensor:
    """(N, 3, H, W) photos in [-1, 1] → (N, H, W) most likely classes, network in eval mode.

    The segmenter is a plain classifier at test time (running batch-norm statistics), unlike
    the generators' paper protocol: its labels must not depend on what else is in the batch.
    """
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            return network(photos.float()).argmax(1)
    finally:
        network.train(was_training)


def fcn_confusion(
    network: nn.Module, photos: Tensor, label_maps: Tensor, palette: Palette
) -> Tensor:
    """(K, K) pixel counts of ``network``'s labels of ``photos`` (columns) against the classes
    of ``label_maps`` (rows), K = ``palette.num_classes``; both (N, 3, H, W) in [-1, 1]."""
    predicted = segment(network, photos).cpu()
    actual = class_indices(label_maps.cpu(), palette)
    return confusion_matrix(predicted, actual, palette.num_classes)


def weights_sha256(network: nn.Module) -> str:
    """The SHA-256 of a network's parameters and buffers: each name, dtype, shape and bytes,
    in name order. Unlike a checkpoint file's digest, it does not change with what the file
    stores beside the weights (the run folder's path, timings, optimizer state), so two
    segmenters trained to the same weights have the same digest."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        value = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


class FCNScore:
    """Accumulates the confusion of a segmenter's labels of photos against label maps.

    ``update(photos, label_maps)`` per batch (both (N, 3, H, W) in [-1, 1], the label maps
    drawn in ``palette``'s colours); ``compute()`` gives ``FCN/pixel_accuracy``,
    ``FCN/class_accuracy``, ``FCN/mean_IoU`` and ``FCN/IoU_<class>`` for every class.
    """

    def __init__(
        self, network: nn.Module, palette: Palette, device: torch.device | str = "cpu"
    ) -> None:
        self.network = network.to(device)
        self.device = torch.device(device)
        self.palette = palette
        k = palette.num_classes
        self.confusion = torch.zeros(k, k, dtype=torch.long)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: torch.device | str = "cpu") -> FCNScore:
        """The segmenter of a ``task=segmenter`` checkpoint (its network and palette)."""
        if not Path(path).is_file():
            raise ConfigError(f"segmenter_ckpt={path} does not exist; give a segmenter .ckpt")
        try:
            checkpoint = read_checkpoint(path)
        except DataError as err:
            raise ConfigError(f"segmenter_ckpt: {err}") from None
        config = checkpoint[CONFIG_KEY]
        task = config.get("task", {})
        if not str(task.get("_target_", "")).endswith("Segmenter"):
            raise ConfigError(
                f"segmenter_ckpt={path} is not a segmenter checkpoint (task "
                f"{task.get('_target_')!r}); train one with python -m pix2pix_lit.train "
                "task=segmenter"
            )
        network = instantiate(task["network"])
        prefix = "network."
        state = checkpoint["state_dict"]
        network.load_state_dict(
            {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        )
        return cls(network, Palette.from_config(task["palette"]), device)

    def update(self, photos: Tensor, label_maps: Tensor) -> None:
        self.confusion += fcn_confusion(
            self.network, photos.to(self.device), label_maps, self.palette
        )

    def compute(self) -> dict[str, float]:
        scores = {f"{PREFIX}{k}": v for k, v in label_scores(self.confusion).items()}
        iou = per_class_scores(self.confusion)["IoU"]
        scores.update(
            {
                f"{PREFIX}IoU_{name}": float(v)
                for name, v in zip(self.palette.names, iou, strict=True)
            }
        )
        return scores
