"""Class-activation-map attention of U-GAT-IT (Kim et al. 2020, Sec. 2.1)."""

import torch
from torch import Tensor, nn


class CAMAttention(nn.Module):
    """Attention from an auxiliary real/fake (or source/target) classifier η on encoder maps.

    For encoder features E (N, C, h, w), two bias-free linear classifiers with weights
    w_gap, w_gmp ∈ R^C score the globally average- and max-pooled features:
    η_gap = w_gap · GAP(E), η_gmp = w_gmp · GMP(E), giving ``cam_logit`` (N, 2). Their
    weights, the importance of each channel, re-weight the maps, a_gap = w_gap ⊙ E and
    a_gmp = w_gmp ⊙ E; a 1×1 convolution fuses cat(a_gap, a_gmp) (N, 2C, h, w) back to C
    channels, followed by ``activation``. The attention ``heatmap`` (N, 1, h, w) is the
    channel sum of the result.
    """

    def __init__(self, channels: int, activation: nn.Module) -> None:
        super().__init__()
        self.gap_fc = nn.Linear(channels, 1, bias=False)
        self.gmp_fc = nn.Linear(channels, 1, bias=False)
        self.conv1x1 = nn.Conv2d(2 * channels, channels, 1)
        self.activation = activation

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return (attended features (N, C, h, w), cam_logit (N, 2), heatmap (N, 1, h, w))."""
        gap_logit = self.gap_fc(x.mean(dim=(2, 3)))
        gmp_logit = self.gmp_fc(x.amax(dim=(2, 3)))
        # .weight is the spectrally normalised weight when the discriminator adds spectral
        # norm, so the maps are re-weighted by the same vector that produced the logit.
        # Departure from the official code, which takes list(fc.parameters())[0]: under
        # spectral norm that is the un-normalised weight_orig, so its D re-weights the maps by
        # a vector σ(w) times longer than the one that scored them (Sec. 2.1: a = w ⊙ E with
        # the classifier's own w).
        gap_features = x * self.gap_fc.weight[:, :, None, None]
        gmp_features = x * self.gmp_fc.weight[:, :, None, None]
        features = self.activation(self.conv1x1(torch.cat([gap_features, gmp_features], dim=1)))
        cam_logit = torch.cat([gap_logit, gmp_logit], dim=1)
        heatmap = features.sum(dim=1, keepdim=True)
        return features, cam_logit, heatmap
