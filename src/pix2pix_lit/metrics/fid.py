"""Distribution distances between generated and target images: FID and KID.

Both compare Inception-v3 features of the two image sets (Heusel et al. 2017; Bińkowski et al.
2018) through torchmetrics, whose Inception network comes from the optional ``torch-fidelity``
package (``pip install 'pix2pix-lit[fid]'``). Its weights are downloaded on first use; offline,
pass the weights file (``weights-inception-2015-12-05-6726825d.pth``) as ``weights_path``. Any other
feature extractor can be passed as ``feature``: an ``nn.Module`` mapping (N, 3, H, W) uint8
images to (N, D) features.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.utils.images import to_uint8

FID_EXTRA = "pip install 'pix2pix-lit[fid]'"
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
DISTRIBUTION_METRICS: tuple[str, ...] = ("FID", "KID", "KID_std")


def torch_fidelity_available() -> bool:
    """Whether the optional ``torch-fidelity`` package (the Inception network) is installed."""
    return importlib.util.find_spec("torch_fidelity") is not None


def inception_extractor(weights_path: str | Path | None = None) -> nn.Module:
    """torchmetrics' Inception-v3 feature extractor (2048-d pool features) for FID and KID.

    Raises ConfigError when ``torch-fidelity`` is missing, ``weights_path`` does not exist, or
    the weights cannot be downloaded.
    """
    if not torch_fidelity_available():
        raise ConfigError(
            f"fid=true needs the optional torch-fidelity package, which is not installed; "
            f"{FID_EXTRA}, or set fid=false"
        )
    if weights_path is not None and not Path(weights_path).is_file():
        raise ConfigError(
            f"fid_weights={weights_path} is not a file; point it at the Inception weights "
            f"downloaded from {INCEPTION_WEIGHTS_URL}, or set fid_weights=null to download them"
        )
    from torchmetrics.image.fid import NoTrainInceptionV3

    try:
        return NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048"],
            feature_extractor_weights_path=None if weights_path is None else str(weights_path),
        )
    except OSError as err:  # urllib's URLError is an OSError: no network
        raise ConfigError(
            f"could not load the FID Inception weights ({err}); download {INCEPTION_WEIGHTS_URL} "
            "and pass fid_weights=/path/to/that/file"
        ) from err


class DistributionScores:
    """FID and KID of generated vs target images, accumulated batch by batch.

    Args:
        feature: the feature extractor; default: :func:`inception_extractor` (``weights_path``).
        weights_path: local Inception weights, when ``feature`` is not given.
        kid_subsets: number of random subsets KID averages over.
        kid_subset_size: images per KID subset (capped at the number of images).
    """

    def __init__(
        self,
        feature: nn.Module | None = None,
        weights_path: str | Path | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
    ) -> None:
        extractor = inception_extractor(weights_path) if feature is None else feature
        self.kid_subset_size = kid_subset_size
        self.count = 0
        # One extractor serves both metrics, so every image goes through Inception once per
        # metric but the weights are loaded only once.
        self.fid = FrechetInceptionDistance(feature=extractor)
        with warnings.catch_warnings():
            # KID keeps every feature vector; at 2048 floats per image that is by design.
            warnings.filterwarnings("ignore", message=".*will save all extracted features")
            self.kid = KernelInceptionDistance(
                feature=extractor, subsets=kid_subsets, subset_size=kid_subset_size
            )

    def update(self, output: Tensor, target: Tensor) -> None:
        """Add a batch of generated (``output``) and target images in [-1, 1]."""
        fake, real = to_uint8(output), to_uint8(target)
        for metric in (self.fid, self.kid):
            metric.update(real, real=True)
            metric.update(fake, real=False)
        self.count += real.shape[0]

    def compute(self) -> tuple[dict[str, float], dict[str, str]]:
        """``({"FID", "KID", "KID_std"}, {})``, or ``({}, {metric: reason})`` under 2 images."""
        if self.count < 2:
            reason = f"needs at least 2 images, got {self.count}"
            return {}, dict.fromkeys(DISTRIBUTION_METRICS, reason)
        self.kid.subset_size = min(self.kid_subset_size, self.count)
        kid_mean, kid_std = self.kid.compute()
        return {
            "FID": float(self.fid.compute()),
            "KID": float(kid_mean),
            "KID_std": float(kid_std),
        }, {}
