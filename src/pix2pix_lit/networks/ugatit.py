"""U-GAT-IT generator and discriminators (Kim et al. 2020, arXiv:1907.10830, Sec. 2 and App. C).

Layer widths and bias choices follow the authors' PyTorch release, so parameter counts match
it exactly (generator 278,959,808 full / 10,589,888 light; discriminators 53,130,176 global
/ 3,290,560 local for 3 channels, ngf = ndf = 64, 4 residual blocks, 256×256 images).
"""

from torch import Tensor, nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.networks.cam import CAMAttention
from pix2pix_lit.networks.init import init_weights
from pix2pix_lit.networks.lin import LIN, AdaLIN, clip_rho_
from pix2pix_lit.networks.norm import add_spectral_norm
from pix2pix_lit.networks.resnet import ResnetBlock
from pix2pix_lit.networks.shapes import SizeRule, require_divisible_size


class ResnetAdaLINBlock(nn.Module):
    """Residual block of the decoder whose normalisation is steered by the attention features:
    x + [pad, Conv3×3, AdaLIN(γ, β), ReLU, pad, Conv3×3, AdaLIN(γ, β)](x).

    x (N, C, H, W), γ and β (N, C) -> (N, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3, bias=False)
        self.norm1 = AdaLIN(channels)
        self.relu = nn.ReLU(True)
        self.conv2 = nn.Conv2d(channels, channels, 3, bias=False)
        self.norm2 = AdaLIN(channels)

    def forward(self, x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        out = self.relu(self.norm1(self.conv1(self.pad(x)), gamma, beta))
        out = self.norm2(self.conv2(self.pad(out)), gamma, beta)
        return x + out


class UGATITGenerator(nn.Module):
    """Encoder E_s, CAM attention with auxiliary classifier η_s, AdaLIN decoder G_t.

    * encoder: reflection pad 3, Conv7×7 ngf, IN, ReLU; two [reflection pad 1, Conv3×3
      stride 2, IN, ReLU] doubling the width to C = 4·ngf; ``n_blocks`` :class:`ResnetBlock`
      with instance norm. (N, in_channels, H, W) -> (N, C, H/4, W/4).
    * attention: :class:`CAMAttention` with ReLU; η_s logits (N, 2), heatmap (N, 1, H/4, W/4).
    * γ, β: an MLP [Linear, ReLU, Linear, ReLU] of width C on the attended features,
      flattened (full model: (img_size/4)²·C inputs, the bulk of the 279M parameters) or
      globally average-pooled (``light``: C inputs), then two bias-free Linear(C, C) heads.
    * decoder: ``n_blocks`` :class:`ResnetAdaLINBlock` sharing γ, β; two [nearest up-sample
      ×2, reflection pad 1, Conv3×3, :class:`LIN`, ReLU] halving the width; reflection pad 3,
      Conv7×7 -> out_channels, Tanh. Output (N, out_channels, H, W) in [-1, 1].

    The full model only accepts img_size × img_size inputs; the light one any size divisible
    by 4. Call :meth:`clip_rho` after every optimiser step.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 4,
        img_size: int = 256,
        light: bool = False,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if img_size <= 0 or img_size % 4:
            raise ConfigError(f"img_size={img_size} must be a positive multiple of 4")
        self.img_size = img_size
        self.light = light
        channels = ngf * 4

        encoder = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=False),
            nn.InstanceNorm2d(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            encoder += [
                nn.ReflectionPad2d(1),
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, bias=False),
                nn.InstanceNorm2d(ngf * mult * 2),
                nn.ReLU(True),
            ]
        encoder += [
            ResnetBlock(channels, "reflect", "instance", use_bias=False) for _ in range(n_blocks)
        ]
        self.encoder = nn.Sequential(*encoder)
        self.cam = CAMAttention(channels, nn.ReLU(True))

        mlp_in = channels if light else (img_size // 4) ** 2 * channels
        self.mlp = nn.Sequential(
            nn.Linear(mlp_in, channels, bias=False),
            nn.ReLU(True),
            nn.Linear(channels, channels, bias=False),
            nn.ReLU(True),
        )
        self.gamma = nn.Linear(channels, channels, bias=False)
        self.beta = nn.Linear(channels, channels, bias=False)

        self.bottleneck = nn.ModuleList(ResnetAdaLINBlock(channels) for _ in range(n_blocks))
        decoder = []
        for mult in (4, 2):
            decoder += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ReflectionPad2d(1),
                nn.Conv2d(ngf * mult, ngf * mult // 2, 3, bias=False),
                LIN(ngf * mult // 2),
                nn.ReLU(True),
            ]
        decoder += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7, bias=False), nn.Tanh()]
        self.decoder = nn.Sequential(*decoder)
        # Departure from the official code, which keeps PyTorch's default (Kaiming-uniform)
        # initialisation: N(0, 0.02) like every other network here (pix2pix, CycleGAN), so a
        # comparison between the tasks does not also compare initialisations; init_type picks
        # another scheme.
        init_weights(self, init_type, init_gain)

    def size_rule(self) -> SizeRule:
        """Sides divisible by 4 (two stride-2 down-samplings); the full model's MLP reads the
        flattened feature map, so it only takes img_size x img_size."""
        return SizeRule(4, None if self.light else self.img_size)

    def forward_with_cam(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Return (image (N, out_channels, H, W), cam_logit (N, 2), heatmap (N, 1, H/4, W/4))."""
        require_divisible_size(x, self.size_rule().multiple, "UGATITGenerator")
        if not self.light and tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise ConfigError(
                f"UGATITGenerator(img_size={self.img_size}, light=False) only accepts"
                f" {self.img_size}x{self.img_size} inputs, got {x.shape[-2]}x{x.shape[-1]};"
                " set model.img_size to data.crop_size or use light=true"
            )
        features, cam_logit, heatmap = self.cam(self.encoder(x))
        pooled = features.mean(dim=(2, 3)) if self.light else features.flatten(1)
        hidden = self.mlp(pooled)
        gamma, beta = self.gamma(hidden), self.beta(hidden)
        for block in self.bottleneck:
            features = block(features, gamma, beta)
        return self.decoder(features), cam_logit, heatmap

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_cam(x)[0]

    def clip_rho(self) -> None:
        """Clamp every AdaLIN / LIN ρ to [0, 1] (call after each generator update)."""
        clip_rho_(self)


class UGATITDiscriminator(nn.Module):
    """Spectrally normalised PatchGAN with CAM attention (U-GAT-IT's D_t).

    ``n_layers − 2`` [reflection pad 1, Conv4×4 stride 2, LeakyReLU(0.2)] (ndf, then doubling)
    and one stride-1 such layer doubling again to C = ndf·2^(n_layers−2);
    :class:`CAMAttention` with LeakyReLU(0.2); reflection pad 1 and a bias-free Conv4×4 -> 1.
    Every Conv2d and Linear is spectrally normalised.

    ``n_layers=5`` is the paper's local discriminator (70×70 receptive field), ``n_layers=7``
    the global one (286×286). Input (N, in_channels, H, W) with H, W divisible by
    2^(n_layers−2); returns (logits (N, 1, h, w) with h = H/2^(n_layers−2) − 2,
    cam_logit (N, 2), heatmap (N, 1, h + 1, w + 1)).
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 5,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        if n_layers < 3:
            raise ConfigError(f"n_layers={n_layers} must be >= 3 (5 = local, 7 = global)")
        layers = []
        channels_in, channels = in_channels, ndf
        for stride in [2] * (n_layers - 2) + [1]:
            layers += [
                nn.ReflectionPad2d(1),
                nn.Conv2d(channels_in, channels, 4, stride=stride),
                nn.LeakyReLU(0.2, True),
            ]
            channels_in, channels = channels, channels * 2
        self.encoder = nn.Sequential(*layers)
        self.cam = CAMAttention(channels_in, nn.LeakyReLU(0.2, True))
        self.classifier = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels_in, 1, 4, bias=False)
        )
        init_weights(self, init_type, init_gain)
        # Departure from the official code: it leaves the CAM's 1×1 convolution without
        # spectral norm. We normalise every layer, so D's Lipschitz bound (the reason for
        # spectral norm, Miyato et al. 2018) holds for the whole network.
        add_spectral_norm(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        features, cam_logit, heatmap = self.cam(self.encoder(x))
        return self.classifier(features), cam_logit, heatmap


class GlobalLocalDiscriminator(nn.Module):
    """U-GAT-IT's pair of discriminators: a global (deep, 286×286 receptive field) and a local
    (shallow, 70×70) :class:`UGATITDiscriminator` looking at the same input.

    :meth:`forward` returns the flat list [global logits, global cam_logit, local logits,
    local cam_logit], so an adversarial loss summed over the entries also trains the CAM
    classifiers η_D, as in the paper's L_cam^{D}.
    """

    def __init__(
        self,
        in_channels: int = 6,
        ndf: int = 64,
        global_layers: int = 7,
        local_layers: int = 5,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        self.global_discriminator = UGATITDiscriminator(
            in_channels, ndf, global_layers, init_type, init_gain
        )
        self.local_discriminator = UGATITDiscriminator(
            in_channels, ndf, local_layers, init_type, init_gain
        )

    def forward_with_heatmaps(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Return (the predictions of :meth:`forward`, [global heatmap, local heatmap])."""
        global_logits, global_cam, global_heatmap = self.global_discriminator(x)
        local_logits, local_cam, local_heatmap = self.local_discriminator(x)
        return [global_logits, global_cam, local_logits, local_cam], [global_heatmap, local_heatmap]

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_with_heatmaps(x)[0]
