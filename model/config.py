"""Architecture and optimiser settings: one typed dataclass each, defaults from the paper (A.4, 5.2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Variant = Literal["srbvae", "rbvae", "vae"]
RESOLUTIONS = (32, 64, 96, 128)


@dataclass(frozen=True)
class ModelConfig:
    # Which objective the networks are trained with; the networks are the same for all three.
    variant: Variant = "srbvae"
    resolution: int = 64  # paper: 64x64 digits, 96x96 faces
    image_channels: int = 3
    z_dim: int = 32  # common factors; paper 5.2: 32 latents "for all experiments and models"
    e_dim: int = 32  # target factors
    # Channel width at the full resolution, doubled at each halving up to max_channels
    # (Karras et al. 2018 style: narrow at high resolution, wide near 4x4).
    base_channels: int = 64
    max_channels: int = 256
    fc_dim: int = 512  # width of the fully connected layers of encoders and discriminators
    # Discriminator channel widths relative to the encoders': 8 of the 18 network passes of an
    # sRb-VAE step are discriminator passes, so narrower ones make CPU training much cheaper.
    disc_width: float = 1.0
    disc_dropout: float = (
        0.25  # A.4: drop the image or the latent input stream of d's last FC layers
    )
    # Not in the paper: e also modulates every normalised feature map of G (per-channel scale
    # and shift, as a style code does in StyleGAN and MUNIT), besides entering its first layer
    # with z. Starts as the identity, so a trained generator can take it on (run.init_from).
    style_modulation: bool = False
    # With style_modulation, whether e also enters G's first layer beside z. False: G's layout
    # comes from z alone and e acts only through the modulations (MUNIT's content/style split).
    # On digits e then carries no size and the separating terms break training (experiments.md).
    e_in_first_layer: bool = True
    # Not in the paper: what q(z|x) sees. "rgb": the image. "grey": its mean over channels,
    # standardised per image (zero mean, unit variance), so that a colour cast or a change of
    # global brightness and contrast is invisible to z. For data whose target factors include
    # such a change (the digits' colour, c / ||c||_1: every unlabelled digit is coloured, every
    # reference digit white), it keeps the z-encoder from telling the two sets apart by colour
    # alone and giving z one meaning per set (docs/experiments.md, session 28). Leave "rgb"
    # where colour is a common factor (a face's skin tone, hair, background).
    z_encoder_input: Literal["rgb", "grey"] = "rgb"
    # Not in the paper: q(z|x) sees the image zoomed about its drawn content's centre until the
    # content's bounding square fills FRAMED_FILL of the frame, so that the content's size is
    # invisible to z and its place is not. For data whose target factors include a change of
    # size (the digits' scale: every reference digit is full-size, unlabelled ones down to
    # half), it keeps z from holding the size (the latent adversary cannot: z's marginal
    # matches across the sets while a probe still reads the size off z). Needs a dark
    # background (the content is what is brighter than it). Leave False where size is a
    # common factor (a face's pose).
    z_encoder_framed: bool = False

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")
        if self.variant not in ("srbvae", "rbvae", "vae"):
            raise ValueError(f"unknown variant {self.variant!r}")
        for name in ("z_dim", "e_dim", "base_channels", "max_channels", "fc_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.disc_width <= 0:
            raise ValueError("disc_width must be positive")
        if not 0.0 <= self.disc_dropout < 1.0:
            raise ValueError("disc_dropout must be in [0, 1)")
        if self.z_encoder_input not in ("rgb", "grey"):
            raise ValueError(f"unknown z_encoder_input {self.z_encoder_input!r}")
        if not (self.e_in_first_layer or self.style_modulation):
            raise ValueError("e_in_first_layer = false needs style_modulation: G would ignore e")

    @property
    def base_size(self) -> int:
        """Side of the first feature map: 4x4, or 6x6 at 96 (96 = 6 * 2^4)."""
        size = self.resolution
        while size > 7:
            size //= 2
        return size

    @property
    def num_stages(self) -> int:
        """Number of x2 up-/down-sampling steps between base_size and the full resolution."""
        return (self.resolution // self.base_size).bit_length() - 1

    def channels_at(self, size: int, width: float = 1.0) -> int:
        """Feature channels of a map of side `size` (scaled by `width`, at least 8)."""
        channels = min(self.max_channels, self.base_channels * (self.resolution // size))
        return max(8, round(channels * width))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class ObjectiveConfig:
    laplace_scale: float = 0.01  # lambda of p(x|z,e) = Laplace(G(z,e), lambda), summed over pixels
    # beta on the KL terms of Rb-VAE / VAE (beta-VAE when > 1). None: 1 for those, and 0 for
    # sRb-VAE, whose KL terms are carried by the discriminators (Eq. 6), not written out.
    kl_weight: float | None = None
    # Rb-VAE and sRb-VAE (with kl_weight > 0), not in the paper: KL(q(e|x) || p(e)) of
    # unlabelled images weighs this many times the other KL terms. Eq. (3) lets e carry common
    # factors (a face's background) that z must hold anyway for the reference images; a dearer
    # e leaves them to z, and keeps for e what z cannot say. A cheaper e (below 1; 0 with the
    # sRb-VAE, whose discriminators match q(e) to the prior) makes a factor that either code
    # could hold, such as a digit's size, cost information only in z (on digits it did not move
    # the size into e: docs/experiments.md, session 20). 1 is the paper.
    e_kl_weight: float = 1.0
    # Rb-VAE and sRb-VAE, not in the paper: weight of -log q(z_r | G(z_r, e_u)), the z of a
    # reference image found again after the e of an unlabelled image was put on it (a
    # transfer), with the reference image's posterior variance. Eq. (3) lets e move a common factor, such as a face's
    # background colour, that z holds too; the z-encoder, which must read every common factor
    # off the reference images, sees such a transfer change z and this term makes G stop. It is
    # the paper's latent reconstruction (Fig. 3e, f) applied to swapped codes. 0 is the paper.
    swap_weight: float = 0.0
    # Rb-VAE or sRb-VAE, not in the paper: weight of the transfer adversary. A discriminator d_tau
    # tells unlabelled images from transfers G(z_r, e_u) (a reference image's z under an
    # unlabelled image's e), and G and q(e|x) learn to make transfers pass as unlabelled
    # images. The reference images are full-size, thin and white, so a transfer can only take
    # on the sizes and stroke widths of the unlabelled set through e: pressure on geometric
    # target factors to leave z, which the latent adversary does not apply (it judges only the
    # marginal of z). Like domain_weight, one logistic loss per image against reconstructions
    # summed over pixels. It has not yet moved stroke width into e on digits (Rb-VAE at
    # 1,000, sRb-VAE at 3,000; docs/experiments.md). 0 is the paper.
    transfer_weight: float = 0.0
    # With transfer_weight: d_tau judges the image together with the e it was made from (real:
    # an unlabelled image and its own e; transfer: G(z_r, e_u) and e_u), like the paper's d_xi
    # judges (x, z, e). Alone, d_tau judges each image by itself, and a full-size transfer is a
    # plausible unlabelled digit; beside e it is not, when e says "small". The pressure is on G
    # to render what e says, so a transfer that draws the digit of e would be rewarded too:
    # the swap term and the latent adversary keep the digit out of e. On the model's side the e
    # beside the image is detached: q(e|x) learns only through what G draws from it. False:
    # d_tau(x).
    transfer_sees_e: bool = False
    # Rb-VAE and sRb-VAE, not in the paper: weight of -log q(z_u | G(z_u, e^r)), the z of an
    # unlabelled image found again in its neutralised image, with the unlabelled posterior's
    # variance, fixed. G draws every neutralised digit at the reference set's size and stroke
    # width (e^r says so), so whatever of the size z_u holds cannot be read back: the term
    # takes it out of z, and reconstruction puts it in e. G and e^r are fixed in it (a G that
    # learnt it could draw z's size under e^r). The swap term's mirror. At 100 on digits e
    # reads the scale worse (docs/experiments.md, "Taking the size out of z"). 0 is the paper.
    neutral_swap_weight: float = 0.0
    # Rb-VAE and sRb-VAE, not in the paper: weight of 0.5 ||E^mu(x_r) - e^r||^2, the e-encoder's
    # code of each reference image pulled to e^r (and e^r to it). The paper defines
    # q(e|x, y=1) as e^r and never runs the e-encoder on reference images, so e^r can sit far
    # outside the codes of the unlabelled images (Mahalanobis distance 33 in the served
    # `digits`, where the unlabelled codes' median is 4.8), and G can read z one way
    # under e^r and another way under every unlabelled e (docs/experiments.md, session 20).
    # With one encoder for both sets, an unlabelled image that looks almost plain gets a code
    # near e^r, so G must move continuously from the reference's rendering to the unlabelled
    # set's, and q(e|x) must ignore the common factors that vary among the reference images.
    # On digits it did not: the encoder codes the white reference digits on e^r, apart from every
    # coloured one (docs/experiments.md, session 27). 0 is the paper.
    reference_e_weight: float = 0.0
    # "logit": Eq. (6) as written, the encoders minimise and the generator maximises d itself.
    # "nonsaturating": the same fixed point through softplus, gentler while d is confident.
    adversarial_loss: Literal["logit", "nonsaturating"] = "logit"
    adversarial_weight: float = 1.0
    latent_recon_weight: float = 1.0  # Fig. 3(e, f): -log q(z, e | G(z, e)) of prior samples
    # sRb-VAE, not in the paper: when > 0, the generator path's adversarial terms (Algorithm 1,
    # line 14) are weighted at every step so that they push the generated images this many
    # times as hard as the image reconstruction pushes the reconstructed ones (norms of the
    # gradients with respect to the generator's outputs). With the paper's scale (summed
    # Laplace terms, lambda 0.01) the reconstruction sends about 10^4 times the adversarial
    # gradient to G, so Eq. (6) barely acts on it. The encoder path's terms (line 7) keep
    # adversarial_weight: they play the KL's part for q, and scaling them by the same 10^3-10^4
    # collapses the posteriors to the prior (docs/training.md). 0: adversarial_weight for both.
    adversarial_balance: float = 0.0
    # Std of Gaussian noise added to every image the discriminators see (instance noise). Not in
    # the paper: it keeps them from telling data from early, blurry samples by the images alone,
    # which starves the encoders of the signal carried by the latents. 0 is the paper.
    disc_image_noise: float = 0.0
    # Weight of the latent domain adversary (Rb-VAE and sRb-VAE; not in the paper): a small
    # discriminator tells from z alone whether an image was a reference or an unlabelled one,
    # and q(z|x) learns to make them indistinguishable. The reference set holds every common
    # factor and none of the target ones, so a z from which the set can be told carries target
    # factors; this pushes them into e directly, where the image discriminators push weakly on
    # short runs. Its scale is that of one logistic loss per image, against reconstruction terms
    # summed over pixels, hence weights in the hundreds. 0 is the paper.
    domain_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.domain_weight < 0:
            raise ValueError("domain_weight must be >= 0")
        if self.e_kl_weight < 0:
            raise ValueError("e_kl_weight must be >= 0")
        if self.swap_weight < 0:
            raise ValueError("swap_weight must be >= 0")
        if self.transfer_weight < 0:
            raise ValueError("transfer_weight must be >= 0")
        if self.neutral_swap_weight < 0:
            raise ValueError("neutral_swap_weight must be >= 0")
        if self.reference_e_weight < 0:
            raise ValueError("reference_e_weight must be >= 0")
        if self.transfer_sees_e and not self.transfer_weight:
            raise ValueError("transfer_sees_e needs transfer_weight > 0")
        if self.laplace_scale <= 0:
            raise ValueError("laplace_scale must be positive")
        if self.adversarial_balance < 0:
            raise ValueError("adversarial_balance must be >= 0")
        if self.disc_image_noise < 0:
            raise ValueError("disc_image_noise must be >= 0")
        if self.adversarial_loss not in ("logit", "nonsaturating"):
            raise ValueError(f"unknown adversarial_loss {self.adversarial_loss!r}")

    def effective_kl_weight(self, variant: Variant) -> float:
        if self.kl_weight is not None:
            return self.kl_weight
        return 0.0 if variant == "srbvae" else 1.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectiveConfig:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class OptimConfig:
    # A.4: Adam with alpha 1e-4, beta1 0.5, beta2 0.99, eps 1e-8, for every network.
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.99)
    eps: float = 1e-8
    disc_lr: float | None = None  # None: same as lr (the paper); set for two time-scale updates

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimConfig:
        data = _known(cls, data)
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        return cls(**data)


VARIANT_NAMES = {"srbvae": "sRb-VAE", "rbvae": "Rb-VAE", "vae": "VAE"}


def method_name(model: ModelConfig, objective: ObjectiveConfig) -> str:
    """How a model was trained, in the words of the docs, the cards and `/models`: the paper's
    variant plus the terms that are not in the paper."""
    additions = [
        name
        for name, used in (
            ("latent domain adversary", objective.domain_weight > 0),
            ("transfer adversary", objective.transfer_weight > 0 and not objective.transfer_sees_e),
            ("transfer adversary on (x, e)", objective.transfer_sees_e),
            ("swap term", objective.swap_weight > 0),
            ("neutral swap term", objective.neutral_swap_weight > 0),
            ("reference e anchor", objective.reference_e_weight > 0),
            ("style modulation", model.style_modulation and model.e_in_first_layer),
            ("e through style modulation alone", not model.e_in_first_layer),
            ("colour-blind z-encoder", model.z_encoder_input == "grey"),
            ("size-blind z-encoder", model.z_encoder_framed),
        )
        if used
    ]
    return " + ".join([VARIANT_NAMES[model.variant], *additions])


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Rejects misspelt keys instead of silently ignoring them."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return dict(data)
