"""The five networks of sRb-VAE (paper A.4, building blocks of Karras et al. 2018).

Encoders q(z|x) and q(e|x), generator G(z, e), discriminators d_xi(x, z, e) and d_gamma(x, z).
Images are (B, 3, H, W) in [-1, 1]; latents are (B, D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig, ObjectiveConfig

LRELU_SLOPE = 0.2  # A.4


class PixelNorm(nn.Module):
    """Normalises each pixel's feature vector to unit mean square (Karras et al. 2018, 4.2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def _conv_block(c_in: int, c_out: int, pixel_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(LRELU_SLOPE)]
    if pixel_norm:
        layers.append(PixelNorm())
    return layers


class ConvTrunk(nn.Module):
    """Image -> flat features: 1x1 from-RGB, then (conv, conv, avg-pool) per halving."""

    def __init__(self, cfg: ModelConfig, width: float = 1.0):
        super().__init__()
        size = cfg.resolution
        layers: list[nn.Module] = [
            nn.Conv2d(cfg.image_channels, cfg.channels_at(size, width), 1),
            nn.LeakyReLU(LRELU_SLOPE),
        ]
        for _ in range(cfg.num_stages):
            c_in, c_out = cfg.channels_at(size, width), cfg.channels_at(size // 2, width)
            layers += _conv_block(c_in, c_in, pixel_norm=False)
            layers += _conv_block(c_in, c_out, pixel_norm=False)
            layers.append(nn.AvgPool2d(2))
            size //= 2
        c = cfg.channels_at(size, width)
        layers += _conv_block(c, c, pixel_norm=False)
        self.net = nn.Sequential(*layers)
        self.out_features = c * size * size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)  # (B, C * base * base)


def standardised_grey(x: torch.Tensor) -> torch.Tensor:
    """The image's mean over channels, standardised per image and repeated on every channel:
    blind to a colour cast and to global brightness and contrast (ModelConfig.z_encoder_input)."""
    grey = x.mean(dim=1, keepdim=True)
    mean = grey.mean(dim=(2, 3), keepdim=True)
    std = grey.std(dim=(2, 3), keepdim=True)
    return ((grey - mean) / (std + 1e-3)).expand_as(x)


# What a framed image's content fills: the reference digits' height in their frame (about 24/32).
FRAMED_FILL = 0.75
# A pixel is content when its brightest channel is above this share of the image's range.
CONTENT_THRESHOLD = 0.3


def framed(x: torch.Tensor) -> torch.Tensor:
    """The image zoomed about its content's centre (pixels brighter than the background) so that
    the content's bounding square fills FRAMED_FILL of the frame: the size is gone, the place
    kept (ModelConfig.z_encoder_framed). Differentiable in the pixels; the box is found without
    gradients. An image with no content is returned as it is. (B, C, H, W) in [-1, 1]."""
    b, _, h, w = x.shape
    with torch.no_grad():
        bright = x.float().amax(1)  # (B, H, W)
        low = bright.amin(dim=(1, 2), keepdim=True)
        high = bright.amax(dim=(1, 2), keepdim=True)
        content = bright > low + CONTENT_THRESHOLD * (high - low)
        content &= (high - low) > 0.1  # a flat image has no content to frame
        rows, cols = content.any(2), content.any(1)  # (B, H), (B, W)
        ys = torch.arange(h, device=x.device).float()
        xs = torch.arange(w, device=x.device).float()
        big = float(max(h, w))
        top = torch.where(rows, ys, big).amin(1)
        bottom = torch.where(rows, ys, -1.0).amax(1)
        left = torch.where(cols, xs, big).amin(1)
        right = torch.where(cols, xs, -1.0).amax(1)
        empty = bottom < 0
        side = torch.maximum(bottom - top + 1, right - left + 1)
        # Normalised coordinates (align_corners=False): pixel p sits at (2p + 1) / n - 1.
        cx = torch.where(empty, 0.0, (left + right + 1) / w - 1)
        cy = torch.where(empty, 0.0, (top + bottom + 1) / h - 1)
        zoom = torch.where(empty, 1.0, side / (FRAMED_FILL * max(h, w)))
        # Output point p samples c + zoom * (p - c): the content's centre c stays where it is.
        theta = torch.zeros(b, 2, 3, device=x.device)
        theta[:, 0, 0] = zoom * max(h, w) / w
        theta[:, 1, 1] = zoom * max(h, w) / h
        theta[:, 0, 2] = cx * (1 - theta[:, 0, 0])
        theta[:, 1, 2] = cy * (1 - theta[:, 1, 1])
        grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
    # Sampled as x + 1, so that what lies outside the image reads as the black background.
    out = F.grid_sample(
        x.float() + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return (out - 1).to(x.dtype)


class GaussianEncoder(nn.Module):
    """q(v|x) = N(mu(x), diag(exp(logvar(x)))) for one latent group (z or e)."""

    def __init__(
        self, cfg: ModelConfig, latent_dim: int, grey_input: bool = False, framed: bool = False
    ):
        super().__init__()
        self.grey_input = grey_input
        self.framed = framed
        self.trunk = ConvTrunk(cfg)
        self.fc = nn.Sequential(
            nn.Linear(self.trunk.out_features, cfg.fc_dim), nn.LeakyReLU(LRELU_SLOPE)
        )
        self.mu = nn.Linear(cfg.fc_dim, latent_dim)
        self.logvar = nn.Linear(cfg.fc_dim, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.framed:
            x = framed(x)
        if self.grey_input:
            x = standardised_grey(x)
        h = self.fc(self.trunk(x))
        # Clamped so that exp() stays finite under bf16 autocast early in training.
        return self.mu(h), self.logvar(h).clamp(-12.0, 8.0)


class Generator(nn.Module):
    """G(z, e): FC to base x base, then (nearest x2, conv, conv) per doubling, tanh output."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.base = cfg.base_size
        c = cfg.channels_at(self.base)
        self.latent_norm = PixelNorm()
        self.e_in_first_layer = cfg.e_in_first_layer
        first_in = cfg.z_dim + (cfg.e_dim if cfg.e_in_first_layer else 0)
        self.fc = nn.Linear(first_in, c * self.base * self.base)
        self.fc_act = nn.Sequential(nn.LeakyReLU(LRELU_SLOPE), PixelNorm())
        layers: list[nn.Module] = _conv_block(c, c, pixel_norm=True)
        size = self.base
        for _ in range(cfg.num_stages):
            c_in, c_out = cfg.channels_at(size), cfg.channels_at(size * 2)
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers += _conv_block(c_in, c_out, pixel_norm=True)
            layers += _conv_block(c_out, c_out, pixel_norm=True)
            size *= 2
        layers += [nn.Conv2d(cfg.channels_at(size), cfg.image_channels, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.channels = c
        # One modulation after each block's PixelNorm, as wide as the conv before it.
        convs = [layer for layer in self.net if isinstance(layer, nn.Conv2d)]
        self.styles = (
            nn.ModuleList(StyleModulation(cfg.e_dim, conv.out_channels) for conv in convs[:-1])
            if cfg.style_modulation
            else None
        )

    def forward(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.latent_norm(torch.cat([z, e], dim=1) if self.e_in_first_layer else z)
        h = self.fc_act(self.fc(h).view(-1, self.channels, self.base, self.base))
        if self.styles is None:
            return self.net(h)  # (B, 3, H, W) in [-1, 1]
        styles = iter(self.styles)
        for layer in self.net:
            h = layer(h)
            if isinstance(layer, PixelNorm):  # each conv block ends with one
                h = next(styles)(h, e)
        return h


class StyleModulation(nn.Module):
    """h * (1 + gamma(e)) + beta(e) per channel of a normalised feature map; zero-initialised,
    so it starts as the identity."""

    def __init__(self, e_dim: int, channels: int):
        super().__init__()
        self.affine = nn.Linear(e_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(e).to(h.dtype)[:, :, None, None].chunk(2, dim=1)
        return h * (1 + gamma) + beta


class StreamDropout(nn.Module):
    """Zeroes whole input streams per sample, each with probability p (paper A.4).

    A.4 drops "the inputs corresponding to latent variables and images" of the last FC layer:
    a discriminator that sometimes sees only the latents must learn to judge them, instead of
    telling real from generated images alone. Kept streams are scaled by 1 / (1 - p).
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, *streams: torch.Tensor) -> list[torch.Tensor]:
        if not self.training or self.p == 0:
            return list(streams)
        keep = 1.0 - self.p
        return [
            s * (torch.rand(s.shape[0], 1, device=s.device) < keep).to(s.dtype) / keep
            for s in streams
        ]  # each (B, F)


class Discriminator(nn.Module):
    """d(x, latents): logit of "x and its latents came from the encoder path q".

    Image features and latents meet only in the last FC layers, whose two input streams are
    dropped whole (A.4) so the discriminator cannot ignore the latents and judge the images alone.
    """

    def __init__(self, cfg: ModelConfig, latent_dim: int):
        super().__init__()
        self.trunk = ConvTrunk(cfg, cfg.disc_width)
        self.image_fc = nn.Sequential(
            nn.Linear(self.trunk.out_features, cfg.fc_dim), nn.LeakyReLU(LRELU_SLOPE)
        )
        self.latent_fc = nn.Sequential(nn.Linear(latent_dim, cfg.fc_dim), nn.LeakyReLU(LRELU_SLOPE))
        self.stream_dropout = StreamDropout(cfg.disc_dropout)
        self.joint = nn.Sequential(
            nn.Linear(2 * cfg.fc_dim, cfg.fc_dim),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(cfg.fc_dim, 1),
        )

    def forward(self, x: torch.Tensor, *latents: torch.Tensor) -> torch.Tensor:
        image = self.image_fc(self.trunk(x))
        latent = self.latent_fc(torch.cat(latents, 1))
        h = torch.cat(self.stream_dropout(image, latent), 1)  # (B, 2 * fc_dim)
        return self.joint(h).squeeze(1)  # (B,) logits


class ImageDiscriminator(nn.Module):
    """d_tau(x): logit of "x is an unlabelled image, not a transfer" (the transfer adversary)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.trunk = ConvTrunk(cfg, cfg.disc_width)
        self.head = nn.Sequential(
            nn.Linear(self.trunk.out_features, cfg.fc_dim),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(cfg.fc_dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x)).squeeze(1)  # (B,) logits


class LatentDiscriminator(nn.Module):
    """d_zeta(z): logit of "z was inferred from a reference image" (the domain adversary)."""

    def __init__(self, cfg: ModelConfig, latent_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, cfg.fc_dim),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(cfg.fc_dim, cfg.fc_dim),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Linear(cfg.fc_dim, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.float()).squeeze(1)  # (B,) logits


class SRbVAE(nn.Module):
    """All trainable parts. Only encoders, generator and e_ref are needed for inference."""

    INFERENCE_PREFIXES = ("encoder_z.", "encoder_e.", "generator.", "e_ref")

    def __init__(
        self,
        cfg: ModelConfig,
        *,
        with_discriminators: bool = True,
        domain_adversary: bool = False,
        transfer_adversary: bool = False,
        transfer_sees_e: bool = False,
    ):
        super().__init__()
        self.cfg = cfg
        self.encoder_z = GaussianEncoder(
            cfg,
            cfg.z_dim,
            grey_input=cfg.z_encoder_input == "grey",
            framed=cfg.z_encoder_framed,
        )
        self.encoder_e = GaussianEncoder(cfg, cfg.e_dim)
        self.generator = Generator(cfg)
        # e^r: the constant target factors of every reference image (paper 4.1), learned.
        self.e_ref = nn.Parameter(torch.zeros(cfg.e_dim))
        adversarial = cfg.variant == "srbvae" and with_discriminators
        self.disc_xze = Discriminator(cfg, cfg.z_dim + cfg.e_dim) if adversarial else None  # d_xi
        self.disc_xz = Discriminator(cfg, cfg.z_dim) if adversarial else None  # d_gamma
        # Only for ObjectiveConfig.domain_weight > 0 (not in the paper; Rb-VAE or sRb-VAE).
        self.disc_domain = (
            LatentDiscriminator(cfg, cfg.z_dim)
            if domain_adversary and with_discriminators and cfg.variant != "vae"
            else None
        )  # d_zeta
        # Only for ObjectiveConfig.transfer_weight > 0 (not in the paper; Rb-VAE or sRb-VAE):
        # d_tau(x), or d_tau(x, e) with ObjectiveConfig.transfer_sees_e.
        self.disc_transfer: nn.Module | None = None  # d_tau
        if transfer_adversary and with_discriminators and cfg.variant != "vae":
            self.disc_transfer = (
                Discriminator(cfg, cfg.e_dim) if transfer_sees_e else ImageDiscriminator(cfg)
            )

    @classmethod
    def for_objective(cls, cfg: ModelConfig, objective: ObjectiveConfig) -> SRbVAE:
        """The networks a training run with `objective` needs: the paper's, plus d_zeta and
        d_tau where their weights are set."""
        return cls(
            cfg,
            domain_adversary=objective.domain_weight > 0,
            transfer_adversary=objective.transfer_weight > 0,
            transfer_sees_e=objective.transfer_sees_e,
        )

    def model_parameters(self) -> list[nn.Parameter]:
        """theta and psi: what the encoder/generator phase updates."""
        return [
            *self.encoder_z.parameters(),
            *self.encoder_e.parameters(),
            *self.generator.parameters(),
            self.e_ref,
        ]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        """xi, gamma, zeta and tau, those that exist: what the discriminator phase updates."""
        discs = (self.disc_xze, self.disc_xz, self.disc_domain, self.disc_transfer)
        return [p for d in discs if d is not None for p in d.parameters()]

    def inference_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if k.startswith(self.INFERENCE_PREFIXES)}

    def expand_e_ref(self, batch: int) -> torch.Tensor:
        return self.e_ref.unsqueeze(0).expand(batch, -1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
