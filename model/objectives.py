"""Training objectives as phases over one batch of unlabelled x_u and reference x_r.

Each objective owns the forward passes of its phases and returns named scalars for the loop:
- `model_phase`: the loss that encoders, generator and e^r (psi, theta) minimise;
- `discriminator_phase`: the logistic-regression loss of d_xi and d_gamma (Eq. 7), computed on
  the detached samples the model phase drew, as in Algorithm 1 (all gradients at one point).
Images are (B, 3, H, W) in [-1, 1]. Losses are computed in float32 whatever the autocast dtype.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar, cast

import torch
import torch.nn.functional as F

from model.config import ObjectiveConfig
from model.networks import SRbVAE, reparameterize

# ObjectiveConfig settings that only SRbVAEObjective reads; their defaults are the paper's.
SRBVAE_ONLY_SETTINGS = ("adversarial_balance",)
# Settings that need a reference set (variant rbvae or srbvae).
REFERENCE_SETTINGS = (
    "swap_weight",
    "neutral_swap_weight",
    "e_kl_weight",
    "transfer_weight",
    "reference_e_weight",
)
# Floor of the variance that scales the swap term (std 0.1; the prior's is 1).
SWAP_MIN_VAR = 0.01
# Cap of a balanced weight: a discriminator whose gradient vanishes must not blow the loss up
# (untrained ones ask for about 1e8 at 32x32; trained ones for 1e3-1e5).
MAX_BALANCED_WEIGHT = 1e9


@dataclass
class PhaseResult:
    loss: torch.Tensor
    stats: dict[str, torch.Tensor]
    # Detached samples handed from the model phase to the discriminator phase.
    cache: dict[str, torch.Tensor] = field(default_factory=dict)
    # The model phase's loss as weighted groups that sum to `loss` (for gradient monitoring).
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


def total(losses: Iterable[torch.Tensor]) -> torch.Tensor:
    """sum() of loss tensors. Never empty here, so never sum()'s start value, the int 0."""
    return cast(torch.Tensor, sum(losses))


_Net = TypeVar("_Net", bound=torch.nn.Module)


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[None]:
    """Passes through `module` inside pass gradients to its inputs but not to its weights."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def present(net: _Net | None, name: str) -> _Net:
    """An optional network the objective needs; SRbVAE builds it only when asked to."""
    if net is None:
        raise ValueError(f"this objective needs SRbVAE.{name}, which the network was built without")
    return net


def laplace_nll(x: torch.Tensor, mean: torch.Tensor, scale: float) -> torch.Tensor:
    """-log Laplace(x | mean, scale) summed over pixels, without the constant. (B,)"""
    return (x.float() - mean.float()).abs().flatten(1).sum(1) / scale


def gaussian_nll(v: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """-log N(v | mu, exp(logvar)) summed over dimensions, without the constant. (B,)"""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (logvar + (v.float() - mu).pow(2) * torch.exp(-logvar)).sum(1)


def fixed_variance_nll(
    found: torch.Tensor, target: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """-log N(target | found, exp(logvar)) without the constant, the variance held fixed
    (detached) and floored at SWAP_MIN_VAR: the swap terms' measure of a z found again. (B,)

    Fixed, so that the encoder cannot excuse a moved z by widening its posterior on generated
    images; floored, so that the near-zero variances of untrained encoders do not make the
    first steps' gradients explode (they collapse the posterior)."""
    var = logvar.detach().float().exp().clamp(min=SWAP_MIN_VAR)
    return 0.5 * ((found.float() - target.float()).pow(2) / var).sum(1)


def logistic_regression(
    d_pos: torch.Tensor, d_neg: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """A discriminator's loss with the logits `d_pos` labelled 1 and `d_neg` 0, and its
    accuracy (0.5: it cannot tell them apart)."""
    loss = 0.5 * (F.softplus(-d_pos).mean() + F.softplus(d_neg).mean())
    acc = 0.5 * ((d_pos > 0).float().mean() + (d_neg < 0).float().mean())
    return loss, acc


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)). (B,)"""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


class Objective:
    """Base: the networks and the objective settings; subclasses define the phases."""

    def __init__(self, net: SRbVAE, cfg: ObjectiveConfig | None = None):
        self.net = net
        self.cfg = cfg or ObjectiveConfig()
        self.kl_weight = self.cfg.effective_kl_weight(net.cfg.variant)
        self.domain = self.cfg.domain_weight > 0
        if self.domain and net.disc_domain is None:
            raise ValueError("domain_weight > 0 needs SRbVAE(..., domain_adversary=True)")
        self.transfer = self.cfg.transfer_weight > 0
        if self.transfer and net.disc_transfer is None:
            raise ValueError("transfer_weight > 0 needs SRbVAE(..., transfer_adversary=True)")
        self.has_discriminators = self.domain or self.transfer

    def _encode_e(
        self, x_u: torch.Tensor, x_r: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """q(e|x_u)'s mean and log-variance, and with reference_e_weight the anchor
        0.5 ||E^mu(x_r) - e^r||^2 (mean over the reference images, coded in the same pass)."""
        if not self.cfg.reference_e_weight:
            return (*self.net.encoder_e(x_u), None)
        mu, lv = self.net.encoder_e(torch.cat([x_u, x_r]))
        bu = x_u.shape[0]
        anchor = 0.5 * (mu[bu:].float() - self.net.e_ref.float()).pow(2).sum(1).mean()
        return mu[:bu], lv[:bu], anchor

    def _add_anchor(self, terms, stats, anchor: torch.Tensor | None) -> None:
        if anchor is not None:
            terms["reference_e"] = self.cfg.reference_e_weight * anchor
            stats["loss/reference_e"] = anchor

    def _domain_term(self, stats: dict[str, torch.Tensor], mu_z, mu_zr) -> torch.Tensor:
        """The domain adversary's weighted term: q(z|x) makes d_zeta call every z the other
        set's."""
        d_zu, d_zr = (
            present(self.net.disc_domain, "disc_domain")(mu_z),
            present(self.net.disc_domain, "disc_domain")(mu_zr),
        )
        domain = 0.5 * (F.softplus(-d_zu).mean() + F.softplus(d_zr).mean())
        stats["loss/domain"] = domain
        return self.cfg.domain_weight * domain

    def _domain_discriminator(self, cache: dict[str, torch.Tensor]) -> PhaseResult:
        """d_zeta's logistic regression: reference z 1, unlabelled z 0."""
        d_zu, d_zr = (
            present(self.net.disc_domain, "disc_domain")(cache["mu_z"]),
            present(self.net.disc_domain, "disc_domain")(cache["mu_zr"]),
        )
        # Accuracy near 0.5 is the goal: z no longer tells which set an image came from.
        loss, acc = logistic_regression(d_zr, d_zu)
        return PhaseResult(loss, {"loss/d_zeta": loss, "disc/acc_zeta": acc})

    def _transfer_term(
        self, terms, stats, cache, z_r: torch.Tensor, mu_e: torch.Tensor, lv_e: torch.Tensor
    ) -> None:
        """The transfer adversary's weighted term, added to `terms`: G and q(e|x) make d_tau
        call the transfers G(z_r, e_u) unlabelled images. The reference digits are all one
        size and width, so transfers can match the unlabelled set's only through e."""
        # z_r detached: the adversary acts through e and G; the reference reconstructions
        # alone decide z_r.
        x_transfer, e_u = self._transfers(z_r.detach(), mu_e, lv_e)
        # Non-saturating. The e beside the image is detached: through it q(e|x) could make a
        # pair pass by making e say less of the style (a transfer that ignored its e would then
        # match it); through G's input it can only make e carry what G must draw.
        term = F.softplus(-self._judge_transfer(x_transfer, e_u.detach())).mean()
        terms["transfer"] = self.cfg.transfer_weight * term
        stats["loss/transfer"] = term
        # The real side: the same unlabelled images' own e (their x_u leads the batch).
        cache.update(x_transfer=x_transfer, e_transfer=e_u)

    def _judge_transfer(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """d_tau's logits (B,): on the image alone, or on the image with the e it carries."""
        d_tau = present(self.net.disc_transfer, "disc_transfer")
        return (d_tau(x, e) if self.cfg.transfer_sees_e else d_tau(x)).float()

    def _transfer_discriminator(self, cache: dict[str, torch.Tensor]) -> PhaseResult:
        """d_tau's logistic regression: unlabelled images 1, transfers 0."""
        x_fake, e = cache["x_transfer"], cache["e_transfer"]
        d_real = self._judge_transfer(cache["x_u"][: len(e)], e)
        d_fake = self._judge_transfer(x_fake, e)
        # Accuracy near 0.5 is the goal: transfers look like unlabelled images.
        loss, acc = logistic_regression(d_real, d_fake)
        return PhaseResult(loss, {"loss/d_tau": loss, "disc/acc_tau": acc})

    def model_phase(self, x_u: torch.Tensor, x_r: torch.Tensor) -> PhaseResult:
        raise NotImplementedError

    def _added_discriminators(self, cache: dict[str, torch.Tensor]) -> list[PhaseResult]:
        """The phases of the discriminators not in the paper (d_zeta, d_tau) this run uses."""
        parts = [self._domain_discriminator(cache)] if self.domain else []
        if self.transfer:
            parts.append(self._transfer_discriminator(cache))
        return parts

    def discriminator_phase(self, cache: dict[str, torch.Tensor]) -> PhaseResult:
        parts = self._added_discriminators(cache)
        if not parts:
            raise NotImplementedError(f"{type(self).__name__} has no discriminators")
        stats = {k: v for part in parts for k, v in part.stats.items()}
        return PhaseResult(total(part.loss for part in parts), stats)

    def _recon(self, x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
        return laplace_nll(x, x_rec, self.cfg.laplace_scale)

    def _transfers(self, z_r, mu_e, lv_e) -> tuple[torch.Tensor, torch.Tensor]:
        """G(z_r, e_u) and the e_u drawn for it: reference z under unlabelled e, as many pairs
        as the smaller batch."""
        n = min(z_r.shape[0], mu_e.shape[0])
        e_u = reparameterize(mu_e[:n], lv_e[:n])
        return self.net.generator(z_r[:n], e_u), e_u

    def _swap_nll(self, z_r, mu_zr, lv_zr, mu_e, lv_e) -> torch.Tensor:
        """-log q(mu_zr | G(z_r, e_u)) with the reference posterior's variance, fixed and
        floored (`fixed_variance_nll`). (B,)"""
        x_swap, _ = self._transfers(z_r, mu_e, lv_e)
        n = x_swap.shape[0]
        mu_zs, _ = self.net.encoder_z(x_swap)
        return fixed_variance_nll(mu_zs, mu_zr[:n].detach(), lv_zr[:n])

    def _neutral_swap_nll(self, z_u, mu_z, lv_z) -> torch.Tensor:
        """-log q(mu_z | G(z_u, e^r)) with the unlabelled posterior's variance, fixed and
        floored (`fixed_variance_nll`). (B,)

        mu_z is not detached: the pull is on z_u to hold only what its neutralised image still
        shows. G and e^r are fixed, the lens: a G that learnt the term could draw, under e^r
        alone, what z brings from its set, and z would keep it."""
        with frozen(self.net.generator):
            x_neutral = self.net.generator(z_u, self.net.expand_e_ref(z_u.shape[0]).detach())
        mu_zn, _ = self.net.encoder_z(x_neutral)
        return fixed_variance_nll(mu_zn, mu_z, lv_z)

    def _add_swaps(self, terms, stats, z_r, mu_zr, lv_zr, mu_e, lv_e, z_u, mu_z, lv_z) -> None:
        """The swap term and its mirror, the neutral swap term, those this run uses."""
        if self.cfg.swap_weight:
            swap = self._swap_nll(z_r, mu_zr, lv_zr, mu_e, lv_e).mean()
            terms["swap_z"] = self.cfg.swap_weight * swap
            stats["loss/swap_z"] = swap
        if self.cfg.neutral_swap_weight:
            neutral_swap = self._neutral_swap_nll(z_u, mu_z, lv_z).mean()
            terms["neutral_swap"] = self.cfg.neutral_swap_weight * neutral_swap
            stats["loss/neutral_swap"] = neutral_swap


class RbVAEObjective(Objective):
    """Eq. (3): KL terms plus Laplace reconstruction, of unlabelled (z, e) and reference (z, e^r)."""

    def model_phase(self, x_u: torch.Tensor, x_r: torch.Tensor) -> PhaseResult:
        net = self.net
        mu_z, lv_z = net.encoder_z(x_u)
        mu_e, lv_e, anchor = self._encode_e(x_u, x_r)
        z_u = reparameterize(mu_z, lv_z)
        recon_u = self._recon(x_u, net.generator(z_u, reparameterize(mu_e, lv_e)))
        kl_e = kl_to_standard_normal(mu_e, lv_e)
        kl_u = kl_to_standard_normal(mu_z, lv_z) + self.cfg.e_kl_weight * kl_e

        mu_zr, lv_zr = net.encoder_z(x_r)
        z_r = reparameterize(mu_zr, lv_zr)
        x_r_rec = net.generator(z_r, net.expand_e_ref(x_r.shape[0]))
        recon_r = self._recon(x_r, x_r_rec)
        kl_r = kl_to_standard_normal(mu_zr, lv_zr)

        terms = {
            "recon_x": recon_u.mean() + recon_r.mean(),
            "kl": self.kl_weight * (kl_u.mean() + kl_r.mean()),
        }
        stats = {
            "loss/recon_x_u": recon_u.mean(),
            "loss/recon_x_r": recon_r.mean(),
            "loss/kl_u": kl_u.mean(),
            "loss/kl_e": kl_e.mean(),
            "loss/kl_r": kl_r.mean(),
        }
        self._add_swaps(terms, stats, z_r, mu_zr, lv_zr, mu_e, lv_e, z_u, mu_z, lv_z)
        self._add_anchor(terms, stats, anchor)
        if self.domain:
            terms["domain"] = self._domain_term(stats, mu_z, mu_zr)
        cache = {"mu_z": mu_z.detach(), "mu_zr": mu_zr.detach()}
        if self.transfer:
            cache["x_u"] = x_u
            self._transfer_term(terms, stats, cache, z_r, mu_e, lv_e)
        loss = total(terms.values())
        stats["loss/total"] = loss
        return PhaseResult(loss, stats, {k: v.detach() for k, v in cache.items()}, terms)


class VAEObjective(Objective):
    """Unsupervised baseline (VAE, beta-VAE): one latent code [z, e] for both sets pooled."""

    def model_phase(self, x_u: torch.Tensor, x_r: torch.Tensor) -> PhaseResult:
        net = self.net
        x = torch.cat([x_u, x_r], 0)
        mu_z, lv_z = net.encoder_z(x)
        mu_e, lv_e = net.encoder_e(x)
        recon = self._recon(
            x, net.generator(reparameterize(mu_z, lv_z), reparameterize(mu_e, lv_e))
        )
        kl = kl_to_standard_normal(mu_z, lv_z) + kl_to_standard_normal(mu_e, lv_e)
        terms = {"recon_x": recon.mean(), "kl": self.kl_weight * kl.mean()}
        loss = total(terms.values())
        stats = {"loss/total": loss, "loss/recon_x": recon.mean(), "loss/kl": kl.mean()}
        return PhaseResult(loss, stats, terms=terms)


class SRbVAEObjective(Objective):
    """Eqs. (6)-(7), Algorithm 1, plus the explicit reconstructions of Fig. 3(c-f).

    d_xi(x, z, e) and d_gamma(x, z) estimate log q/p: positive on encoder-path pairs
    (data x with z, e ~ q(.|x)), negative on generator-path pairs (x ~ G(z, e), z, e ~ prior).
    Each network runs once per group of inputs (one generator pass renders the reconstructions
    and the prior samples together): the same values as separate passes, fewer kernel launches.
    """

    def __init__(self, net: SRbVAE, cfg: ObjectiveConfig | None = None):
        super().__init__(net, cfg)
        self.has_discriminators = True

    def _disc_view(self, x: torch.Tensor) -> torch.Tensor:
        """What the discriminators see of an image: itself, or itself plus instance noise."""
        sigma = self.cfg.disc_image_noise
        return x if sigma == 0 else x + sigma * torch.randn_like(x)

    def _discriminate(self, x_u, z, e, x_hat, z_hat, e_hat, x_r, z_r, x_hat_r, z_hat_r):
        """Logits of d_xi on (q-pairs, p-pairs) and of d_gamma on (q-pairs, p-pairs), each (B,)."""
        noisy, bu, br = self._disc_view, x_u.shape[0], x_r.shape[0]
        d_u = present(self.net.disc_xze, "disc_xze")(
            noisy(torch.cat([x_u, x_hat])), torch.cat([z, z_hat]), torch.cat([e, e_hat])
        ).float()
        d_r = present(self.net.disc_xz, "disc_xz")(
            noisy(torch.cat([x_r, x_hat_r])), torch.cat([z_r, z_hat_r])
        ).float()
        return d_u[:bu], d_u[bu:], d_r[:br], d_r[br:]

    def model_phase(self, x_u: torch.Tensor, x_r: torch.Tensor) -> PhaseResult:
        net, cfg = self.net, self.cfg
        bu, br = x_u.shape[0], x_r.shape[0]
        e_ref_r = net.expand_e_ref(br)

        # Encoder path q: data and inferred latents.
        mu_zz, lv_zz = net.encoder_z(torch.cat([x_u, x_r]))
        mu_z, lv_z, mu_zr, lv_zr = mu_zz[:bu], lv_zz[:bu], mu_zz[bu:], lv_zz[bu:]
        mu_e, lv_e, anchor = self._encode_e(x_u, x_r)
        z, e = reparameterize(mu_z, lv_z), reparameterize(mu_e, lv_e)
        z_r = reparameterize(mu_zr, lv_zr)

        # Generator path p: prior latents (Algorithm 1, lines 9-11).
        z_hat = torch.randn(bu, net.cfg.z_dim, device=x_u.device)
        e_hat = torch.randn(bu, net.cfg.e_dim, device=x_u.device)
        z_hat_r = torch.randn(br, net.cfg.z_dim, device=x_u.device)

        # One generator pass: reconstructions of both sets (Fig. 3c, d), then the generated
        # images x_hat, x_hat_r (lines 12-13). (2 * (bu + br), 3, H, W)
        out = net.generator(
            torch.cat([z, z_r, z_hat, z_hat_r]), torch.cat([e, e_ref_r, e_hat, e_ref_r])
        )
        rec_u, rec_r, x_hat, x_hat_r = out.split([bu, br, bu, br])
        recon_u, recon_r = self._recon(x_u, rec_u).mean(), self._recon(x_r, rec_r).mean()
        recon = recon_u + recon_r

        # Eq. (6) through the discriminators' estimates of L_xze and L_xz.
        d_q_u, d_p_u, d_q_r, d_p_r = self._discriminate(
            x_u, z, e, x_hat, z_hat, e_hat, x_r, z_r, x_hat_r, z_hat_r
        )
        # The encoder path (q-pairs, lines 4-7) and the generator path (p-pairs, lines 9-14).
        if cfg.adversarial_loss == "logit":
            adv_q = d_q_u.mean() + d_q_r.mean()
            adv_p = -d_p_u.mean() - d_p_r.mean()
        else:
            adv_q = F.softplus(d_q_u).mean() + F.softplus(d_q_r).mean()
            adv_p = F.softplus(-d_p_u).mean() + F.softplus(-d_p_r).mean()

        # Fig. 3(e, f): the prior latents recovered from the images they generated.
        mu_zh, lv_zh = net.encoder_z(torch.cat([x_hat, x_hat_r]))
        mu_eh, lv_eh = net.encoder_e(x_hat)
        latent = (
            gaussian_nll(z_hat, mu_zh[:bu], lv_zh[:bu]) + gaussian_nll(e_hat, mu_eh, lv_eh)
        ).mean() + gaussian_nll(z_hat_r, mu_zh[bu:], lv_zh[bu:]).mean()

        p_weight = self._generator_adversarial_weight(out, bu + br, recon, adv_p)
        terms = {
            "adversarial_q": cfg.adversarial_weight * adv_q,
            "adversarial_p": p_weight * adv_p,
            "recon_x": recon,
            "recon_latent": cfg.latent_recon_weight * latent,
        }
        stats = {
            "loss/adversarial": adv_q + adv_p,
            "loss/adversarial_q": adv_q,
            "loss/adversarial_p": adv_p,
            "loss/recon_x_u": recon_u,
            "loss/recon_x_r": recon_r,
            "loss/recon_latent": latent,
            "weight/adversarial_p": p_weight,
        }
        self._add_swaps(terms, stats, z_r, mu_zr, lv_zr, mu_e, lv_e, z, mu_z, lv_z)
        self._add_anchor(terms, stats, anchor)
        if self.domain:
            terms["domain"] = self._domain_term(stats, mu_z, mu_zr)
        extra: dict[str, torch.Tensor] = {}
        if self.transfer:
            self._transfer_term(terms, stats, extra, z_r, mu_e, lv_e)
        if self.kl_weight > 0:
            kl_e = kl_to_standard_normal(mu_e, lv_e).mean()
            kl = kl_to_standard_normal(mu_z, lv_z).mean() + cfg.e_kl_weight * kl_e
            kl = kl + kl_to_standard_normal(mu_zr, lv_zr).mean()
            terms["kl"] = self.kl_weight * kl
            stats["loss/kl"] = kl
            stats["loss/kl_e"] = kl_e
        loss = total(terms.values())
        stats["loss/total"] = loss
        cache = {
            "x_u": x_u, "z": z, "e": e, "x_r": x_r, "z_r": z_r, "mu_z": mu_z, "mu_zr": mu_zr,
            "x_hat": x_hat, "z_hat": z_hat, "e_hat": e_hat, "x_hat_r": x_hat_r, "z_hat_r": z_hat_r,
        }  # fmt: skip
        cache.update(extra)
        return PhaseResult(loss, stats, {k: v.detach() for k, v in cache.items()}, terms)

    def _generator_adversarial_weight(
        self, out: torch.Tensor, n_rec: int, recon: torch.Tensor, adv_p: torch.Tensor
    ) -> torch.Tensor:
        """The weight of the generator path's adversarial terms: the fixed one, or the one that
        balances them against the image reconstruction by their gradients on the generator's
        outputs `out` (its first `n_rec` rows are reconstructions, the rest prior samples).
        Detached: a weight, not a loss."""
        balance = self.cfg.adversarial_balance
        if not balance:
            return torch.tensor(self.cfg.adversarial_weight, device=out.device)
        (g_rec,) = torch.autograd.grad(recon, out, retain_graph=True)
        (g_adv,) = torch.autograd.grad(adv_p, out, retain_graph=True)
        ref, own = g_rec[:n_rec].float().norm(), g_adv[n_rec:].float().norm()
        return (balance * ref / own.clamp(min=1e-12)).clamp(max=MAX_BALANCED_WEIGHT)

    def discriminator_phase(self, cache: dict[str, torch.Tensor]) -> PhaseResult:
        """Eq. (7) / Algorithm 1 lines 15-18: logistic regression, q-pairs 1, p-pairs 0."""
        c = cache
        d_q_u, d_p_u, d_q_r, d_p_r = self._discriminate(
            c["x_u"], c["z"], c["e"], c["x_hat"], c["z_hat"], c["e_hat"],
            c["x_r"], c["z_r"], c["x_hat_r"], c["z_hat_r"],
        )  # fmt: skip
        loss_xi, acc_xi = logistic_regression(d_q_u, d_p_u)
        loss_gamma, acc_gamma = logistic_regression(d_q_r, d_p_r)
        loss = loss_xi + loss_gamma
        stats = {
            "loss/d_xi": loss_xi,
            "loss/d_gamma": loss_gamma,
            # Accuracy near 1.0 for long means the discriminators won (the model gets no signal).
            "disc/acc_xi": acc_xi,
            "disc/acc_gamma": acc_gamma,
            "disc/logit_q_u": d_q_u.mean(),
            "disc/logit_p_u": d_p_u.mean(),
        }
        for part in self._added_discriminators(cache):
            loss = loss + part.loss
            stats.update(part.stats)
        return PhaseResult(loss, stats)


def make_objective(net: SRbVAE, cfg: ObjectiveConfig | None = None) -> Objective:
    """The objective that trains `net`'s variant."""
    classes = {"srbvae": SRbVAEObjective, "rbvae": RbVAEObjective, "vae": VAEObjective}
    if cfg is not None:  # settings that the other variants would ignore
        paper = ObjectiveConfig()
        for name in SRBVAE_ONLY_SETTINGS:
            if net.cfg.variant != "srbvae" and getattr(cfg, name) != getattr(paper, name):
                raise ValueError(f"{name} applies to srbvae only, not {net.cfg.variant}")
        if net.cfg.variant == "vae":
            for name in REFERENCE_SETTINGS:
                if getattr(cfg, name) != getattr(paper, name):
                    raise ValueError(f"{name} needs a reference set: variant rbvae or srbvae")
    return classes[net.cfg.variant](net, cfg)
