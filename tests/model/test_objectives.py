import math

import pytest
import torch
from torch.distributions import Laplace, Normal, kl_divergence

from model.config import ObjectiveConfig
from model.networks import SRbVAE
from model.objectives import (
    SWAP_MIN_VAR,
    frozen,
    gaussian_nll,
    kl_to_standard_normal,
    laplace_nll,
    make_objective,
)
from model.training_step import _frozen
from tests.model.conftest import images, tiny_config


def test_laplace_nll_is_the_laplace_log_likelihood_up_to_a_constant():
    x, mean = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    exact = -Laplace(mean, 0.01).log_prob(x).flatten(1).sum(1)
    constant = 3 * 4 * 4 * math.log(2 * 0.01)
    assert torch.allclose(laplace_nll(x, mean, 0.01) + constant, exact, rtol=1e-5)


def test_gaussian_nll_and_kl_match_torch_distributions():
    v, mu, logvar = torch.randn(5, 6), torch.randn(5, 6), torch.randn(5, 6)
    std = torch.exp(0.5 * logvar)
    exact = -Normal(mu, std).log_prob(v).sum(1) - 6 * 0.5 * math.log(2 * math.pi)
    assert torch.allclose(gaussian_nll(v, mu, logvar), exact, atol=1e-4)
    kl = kl_divergence(Normal(mu, std), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(kl_to_standard_normal(mu, logvar), kl, atol=1e-4)


@pytest.mark.parametrize("variant", ["srbvae", "rbvae", "vae"])
@pytest.mark.parametrize("adversarial_loss", ["logit", "nonsaturating"])
def test_every_loss_is_finite(variant, adversarial_loss):
    net = SRbVAE(tiny_config(variant=variant))
    objective = make_objective(net, ObjectiveConfig(adversarial_loss=adversarial_loss))
    result = objective.model_phase(images(4, 32), images(3, 32))
    assert all(torch.isfinite(v) for v in result.stats.values()), result.stats
    if objective.has_discriminators:
        d_result = objective.discriminator_phase(result.cache)
        assert all(torch.isfinite(v) for v in d_result.stats.values()), d_result.stats


def _with_grad(params):
    return [p.grad is not None and p.grad.abs().sum() > 0 for p in params]


def test_model_phase_updates_encoders_generator_and_e_ref_only():
    net = SRbVAE(tiny_config())
    objective = make_objective(net)
    with _frozen(net.discriminator_parameters()):
        objective.model_phase(images(4, 32), images(4, 32)).loss.backward()
    assert all(_with_grad(net.model_parameters()))
    assert net.e_ref.grad is not None and net.e_ref.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.discriminator_parameters())


def test_discriminator_phase_leaves_encoders_and_generator_untouched():
    net = SRbVAE(tiny_config())
    objective = make_objective(net)
    cache = objective.model_phase(images(4, 32), images(4, 32)).cache
    d_result = objective.discriminator_phase(cache)
    d_result.loss.backward()
    assert all(_with_grad(net.discriminator_parameters()))
    assert all(p.grad is None for p in net.model_parameters())


def test_rbvae_reference_images_are_decoded_with_e_ref():
    net = SRbVAE(tiny_config(variant="rbvae"))
    result = make_objective(net).model_phase(images(4, 32), images(4, 32))
    (e_ref_grad,) = torch.autograd.grad(result.stats["loss/recon_x_r"], [net.e_ref])
    assert e_ref_grad.abs().sum() > 0
    # Unlabelled images use the inferred e, never e^r.
    grads = torch.autograd.grad(result.stats["loss/recon_x_u"], [net.e_ref], allow_unused=True)
    assert grads[0] is None


def test_instance_noise_reaches_only_what_the_discriminators_see():
    net = SRbVAE(tiny_config()).eval()
    objective = make_objective(net, ObjectiveConfig(disc_image_noise=0.5))
    x = images(4, 32)
    assert not torch.equal(objective._disc_view(x), x)
    assert torch.equal(make_objective(net)._disc_view(x), x)
    result = objective.model_phase(x, x)
    assert torch.equal(result.cache["x_u"], x)  # the clean images go on to the next phase
    assert all(
        torch.isfinite(v) for v in objective.discriminator_phase(result.cache).stats.values()
    )


def test_kl_weight_defaults_follow_the_variant():
    assert make_objective(SRbVAE(tiny_config())).kl_weight == 0.0
    assert make_objective(SRbVAE(tiny_config(variant="rbvae"))).kl_weight == 1.0
    beta = make_objective(SRbVAE(tiny_config(variant="vae")), ObjectiveConfig(kl_weight=4.0))
    assert beta.kl_weight == 4.0


def _rbvae_phases_with_the_same_noise(*configs: ObjectiveConfig):
    """The model phase of one Rb-VAE on one batch under each config, with the same noise."""
    net = SRbVAE(tiny_config(variant="rbvae")).eval()
    x_u, x_r = images(4, 32), images(4, 32)
    results = []
    for cfg in configs:
        torch.manual_seed(0)
        results.append(make_objective(net, cfg).model_phase(x_u, x_r))
    return results


def test_e_kl_weight_scales_only_the_kl_of_e_in_rbvae():
    one, three = (
        r.stats
        for r in _rbvae_phases_with_the_same_noise(
            ObjectiveConfig(e_kl_weight=1.0), ObjectiveConfig(e_kl_weight=3.0)
        )
    )
    kl_e = one["loss/kl_e"]
    assert kl_e > 0 and torch.allclose(three["loss/kl_e"], kl_e)
    assert torch.allclose(three["loss/kl_u"] - one["loss/kl_u"], 2 * kl_e)
    with pytest.raises(ValueError, match="e_kl_weight"):
        ObjectiveConfig(e_kl_weight=-1.0)
    with pytest.raises(ValueError, match="reference set"):  # the VAE has no e of its own
        make_objective(SRbVAE(tiny_config(variant="vae")), ObjectiveConfig(e_kl_weight=2))


def test_e_kl_weight_prices_e_in_the_srbvae_kl_term():
    net = SRbVAE(tiny_config(variant="srbvae"))
    x_u, x_r = images(4, 32), images(4, 32)
    results = []
    for e_kl_weight in (1.0, 0.0):
        torch.manual_seed(0)
        cfg = ObjectiveConfig(kl_weight=2.0, e_kl_weight=e_kl_weight)
        results.append(make_objective(net, cfg).model_phase(x_u, x_r))
    full, z_only = results
    kl_e = full.stats["loss/kl_e"]
    assert kl_e > 0 and torch.allclose(z_only.stats["loss/kl_e"], kl_e)
    assert torch.allclose(full.stats["loss/kl"] - z_only.stats["loss/kl"], kl_e)
    assert torch.allclose(full.terms["kl"] - z_only.terms["kl"], 2.0 * kl_e)


def test_swap_weight_adds_the_z_of_transfers_to_the_rbvae_loss():
    off, on = _rbvae_phases_with_the_same_noise(
        ObjectiveConfig(swap_weight=0.0), ObjectiveConfig(swap_weight=2.0)
    )
    _assert_adds_the_term(off, on, "swap_z", "swap_weight")


def _assert_adds_the_term(off, on, term: str, setting: str, weight: float = 2.0) -> None:
    """`on` (with `setting` at `weight`) adds `weight` times the term `term` to `off`'s loss and
    changes nothing else; the setting refuses negative values and the VAE."""
    assert f"loss/{term}" not in off.stats and term in on.terms
    value = on.stats[f"loss/{term}"]
    assert value > 0 and torch.isfinite(value)
    assert torch.allclose(on.stats["loss/recon_x_u"], off.stats["loss/recon_x_u"])
    assert torch.allclose(on.loss - off.loss, weight * value, rtol=1e-4)
    with pytest.raises(ValueError, match=setting):
        ObjectiveConfig(**{setting: -1.0})
    with pytest.raises(ValueError, match="needs a reference set"):
        make_objective(SRbVAE(tiny_config(variant="vae")), ObjectiveConfig(**{setting: 1.0}))


def _without_and_with(net: SRbVAE, x_u, x_r, setting: str, weight: float = 2.0):
    """The model phase with `setting` at 0 and at `weight`, under the same noise."""

    def phase(value):
        torch.manual_seed(0)
        cfg = ObjectiveConfig(**{setting: value})
        return make_objective(net, cfg).model_phase(x_u, x_r)

    return phase(0.0), phase(weight)


def test_swap_weight_adds_the_z_of_transfers_to_the_srbvae_loss():
    net = SRbVAE(tiny_config(variant="srbvae"))
    off, on = _without_and_with(net, images(4, 32), images(4, 32), "swap_weight")
    _assert_adds_the_term(off, on, "swap_z", "swap_weight")


def test_swap_term_reaches_the_generator_and_floors_tiny_variances():
    net = SRbVAE(tiny_config(variant="rbvae"))
    objective = make_objective(net, ObjectiveConfig(swap_weight=1.0))
    z_r, mu_zr = torch.randn(3, net.cfg.z_dim), torch.randn(3, net.cfg.z_dim)
    mu_e, lv_e = torch.randn(3, net.cfg.e_dim), torch.zeros(3, net.cfg.e_dim)

    def swap(lv_zr):
        torch.manual_seed(0)
        return objective._swap_nll(z_r, mu_zr, lv_zr, mu_e, lv_e)

    tiny = swap(torch.full((3, net.cfg.z_dim), -50.0))
    assert torch.allclose(tiny, swap(torch.full((3, net.cfg.z_dim), math.log(SWAP_MIN_VAR))))
    assert (swap(torch.zeros(3, net.cfg.z_dim)) < tiny).all()  # a wider posterior forgives more
    tiny.sum().backward()
    for part in (net.generator, net.encoder_z):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


@pytest.mark.parametrize("variant", ["rbvae", "srbvae"])
def test_neutral_swap_weight_adds_the_z_of_neutralised_images_to_the_loss(variant):
    net = SRbVAE(tiny_config(variant=variant)).eval()
    off, on = _without_and_with(net, images(4, 32), images(4, 32), "neutral_swap_weight")
    _assert_adds_the_term(off, on, "neutral_swap", "neutral_swap_weight")


@pytest.mark.parametrize("variant", ["rbvae", "srbvae"])
def test_neutral_swap_term_moves_the_z_encoder_alone(variant):
    net = SRbVAE(tiny_config(variant=variant))
    objective = make_objective(net, ObjectiveConfig(neutral_swap_weight=1.0))
    with _frozen(net.discriminator_parameters()):
        term = objective.model_phase(images(4, 32), images(4, 32)).stats["loss/neutral_swap"]
    grads = torch.autograd.grad(term, list(net.encoder_z.parameters()), retain_graph=True)
    assert any(g.abs().sum() > 0 for g in grads)
    # G and e^r are the fixed lens: a G that learnt the term could draw z's size under e^r.
    for params in (list(net.generator.parameters()), list(net.encoder_e.parameters())):
        assert all(g is None for g in torch.autograd.grad(term, params, allow_unused=True))
    assert torch.autograd.grad(term, [net.e_ref], allow_unused=True) == (None,)
    # Every other term still trains G.
    assert all(p.requires_grad for p in net.generator.parameters())


def test_neutral_swap_term_is_zero_only_for_a_z_that_neutralising_keeps():
    """-log q(z_u | G(z_u, e^r)): a z the z-encoder reads back off the neutralised image costs
    nothing; one that G drops under e^r costs its distance, in posterior standard deviations."""
    net = SRbVAE(tiny_config(variant="rbvae")).eval()
    objective = make_objective(net, ObjectiveConfig(neutral_swap_weight=1.0))
    z = torch.randn(3, net.cfg.z_dim)
    with torch.no_grad():
        read_back, _ = net.encoder_z(net.generator(z, net.expand_e_ref(3)))
    lv = torch.zeros(3, net.cfg.z_dim)
    assert torch.allclose(objective._neutral_swap_nll(z, read_back, lv), torch.zeros(3), atol=1e-5)
    moved = objective._neutral_swap_nll(z, read_back + 2.0, lv)
    assert torch.allclose(moved, torch.full((3,), 0.5 * 4.0 * net.cfg.z_dim), rtol=1e-4)


def test_frozen_restores_the_weights_trainability_when_the_pass_fails():
    net = SRbVAE(tiny_config(variant="rbvae"))
    with pytest.raises(RuntimeError), frozen(net.generator):
        assert not any(p.requires_grad for p in net.generator.parameters())
        raise RuntimeError("a pass that fails")
    assert all(p.requires_grad for p in net.generator.parameters())


@pytest.mark.parametrize("variant", ["srbvae", "rbvae"])
def test_reference_e_anchor_pulls_the_reference_codes_and_e_ref_together(variant):
    net = SRbVAE(tiny_config(variant=variant)).eval()
    with torch.no_grad():
        net.e_ref.fill_(3.0)  # far from the untrained encoder's codes, so the term is large
    x_u, x_r = images(4, 32), images(3, 32)
    off, on = _without_and_with(net, x_u, x_r, "reference_e_weight")
    assert "loss/reference_e" not in off.stats and "reference_e" in on.terms
    mu_er, _ = net.encoder_e(x_r)
    expected = 0.5 * (mu_er - net.e_ref).pow(2).sum(1).mean()
    anchor = on.stats["loss/reference_e"]
    assert torch.allclose(anchor, expected, rtol=1e-4)
    # The unlabelled codes are those of the encoder alone: the term only adds itself.
    assert torch.allclose(on.stats["loss/recon_x_u"], off.stats["loss/recon_x_u"])
    # (float32 losses of about 4e5: a difference good to a few hundredths)
    assert torch.allclose(on.loss - off.loss, 2 * anchor, atol=0.1)
    # It moves e^r and the e-encoder's means, and nothing of G.
    parts = [[net.e_ref], list(net.encoder_e.parameters()), list(net.generator.parameters())]
    moved = [
        any(g is not None and g.abs().sum() > 0 for g in grads)
        for grads in (
            torch.autograd.grad(on.terms["reference_e"], part, allow_unused=True, retain_graph=True)
            for part in parts
        )
    ]
    assert moved == [True, True, False]


def test_reference_e_weight_needs_a_reference_set_and_is_not_negative():
    with pytest.raises(ValueError, match="reference_e_weight"):
        ObjectiveConfig(reference_e_weight=-1.0)
    with pytest.raises(ValueError, match="needs a reference set"):
        make_objective(SRbVAE(tiny_config(variant="vae")), ObjectiveConfig(reference_e_weight=1))


@pytest.mark.parametrize("variant", ["srbvae", "rbvae"])
def test_domain_adversary_trains_its_discriminator_and_reaches_only_the_z_encoder(variant):
    net = SRbVAE(tiny_config(variant=variant), domain_adversary=True)
    objective = make_objective(net, ObjectiveConfig(domain_weight=100.0))
    result = objective.model_phase(images(4, 32), images(4, 32))
    (domain,) = [result.stats["loss/domain"]]
    z_grads = torch.autograd.grad(domain, list(net.encoder_z.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in z_grads)
    # e and the generator are not what the adversary judges.
    others = [*net.encoder_e.parameters(), *net.generator.parameters()]
    assert all(g is None for g in torch.autograd.grad(domain, others, allow_unused=True))
    d_result = objective.discriminator_phase(result.cache)
    assert "disc/acc_zeta" in d_result.stats
    d_result.loss.backward()
    assert all(_with_grad(list(net.disc_domain.parameters())))


def test_domain_weight_without_the_adversary_network_is_refused():
    with pytest.raises(ValueError, match="domain_adversary"):
        make_objective(SRbVAE(tiny_config()), ObjectiveConfig(domain_weight=1.0))
    assert SRbVAE(tiny_config()).disc_domain is None
    assert SRbVAE(tiny_config(variant="vae"), domain_adversary=True).disc_domain is None


# (variant, transfer_sees_e): d_tau(x) or d_tau(x, e), beside each reference-set objective.
TRANSFER_SETUPS = [(v, sees_e) for v in ("rbvae", "srbvae") for sees_e in (False, True)]


def _transfer_net(variant: str, sees_e: bool = False) -> SRbVAE:
    return SRbVAE(tiny_config(variant=variant), transfer_adversary=True, transfer_sees_e=sees_e)


@pytest.mark.parametrize(("variant", "sees_e"), TRANSFER_SETUPS)
def test_transfer_weight_adds_the_transfer_adversary_to_the_loss(variant, sees_e):
    net = _transfer_net(variant, sees_e).eval()
    x_u, x_r = images(4, 32), images(4, 32)
    results = []
    for weight in (0.0, 3.0):
        torch.manual_seed(0)
        results.append(
            make_objective(
                net, ObjectiveConfig(transfer_weight=weight, transfer_sees_e=sees_e and weight > 0)
            ).model_phase(x_u, x_r)
        )
    off, on = results
    assert "loss/transfer" not in off.stats and "x_transfer" not in off.cache
    term = on.stats["loss/transfer"]
    assert term > 0 and torch.isfinite(term)
    assert torch.allclose(on.stats["loss/recon_x_u"], off.stats["loss/recon_x_u"])
    assert torch.allclose(on.terms["transfer"], 3 * term)
    # The other terms are unchanged (losses near 4e5 in float32: their spacing is 0.03).
    assert torch.allclose(on.loss - off.loss, 3 * term, atol=0.1)
    assert on.cache["x_transfer"].shape == x_u.shape and not on.cache["x_transfer"].requires_grad


@pytest.mark.parametrize(("variant", "sees_e"), TRANSFER_SETUPS)
def test_transfer_adversary_reaches_the_generator_and_e_encoder_but_not_z(variant, sees_e):
    net = _transfer_net(variant, sees_e)
    objective = make_objective(net, ObjectiveConfig(transfer_weight=10.0, transfer_sees_e=sees_e))
    with _frozen(net.discriminator_parameters()):
        term = objective.model_phase(images(4, 32), images(4, 32)).stats["loss/transfer"]
    for part in (net.generator, net.encoder_e):
        grads = torch.autograd.grad(term, list(part.parameters()), retain_graph=True)
        assert any(g.abs().sum() > 0 for g in grads)
    # z_r is detached: the reference reconstructions alone decide what z reads.
    z_grads = torch.autograd.grad(term, list(net.encoder_z.parameters()), allow_unused=True)
    assert all(g is None for g in z_grads)


@pytest.mark.parametrize("variant", ["rbvae", "srbvae"])
def test_transfer_adversary_moves_e_only_through_what_g_draws(variant):
    """d_tau(x, e) judges the transfer beside its e, but sends q(e|x) nothing through that e:
    there it could only make e say less. With G's e input cut, no gradient reaches q(e|x)."""
    net = _transfer_net(variant, sees_e=True)
    net.generator.register_forward_pre_hook(lambda module, args: (args[0], args[1].detach()))
    objective = make_objective(net, ObjectiveConfig(transfer_weight=10.0, transfer_sees_e=True))
    with _frozen(net.discriminator_parameters()):
        term = objective.model_phase(images(4, 32), images(4, 32)).stats["loss/transfer"]
    e_grads = torch.autograd.grad(term, list(net.encoder_e.parameters()), allow_unused=True)
    assert all(g is None for g in e_grads)


@pytest.mark.parametrize(("variant", "sees_e"), TRANSFER_SETUPS)
def test_transfer_discriminator_phase_trains_d_tau_with_the_other_discriminators(variant, sees_e):
    net = _transfer_net(variant, sees_e)
    objective = make_objective(net, ObjectiveConfig(transfer_weight=1.0, transfer_sees_e=sees_e))
    result = objective.model_phase(images(4, 32), images(4, 32))
    assert not any(v.requires_grad for v in result.cache.values())
    with _frozen(net.model_parameters()):
        d_result = objective.discriminator_phase(result.cache)
    assert {"loss/d_tau", "disc/acc_tau"} <= set(d_result.stats)
    if variant == "srbvae":  # the paper's d_xi and d_gamma still train alongside d_tau
        assert {"loss/d_xi", "loss/d_gamma"} <= set(d_result.stats)
    d_result.loss.backward()
    assert all(_with_grad(list(net.disc_transfer.parameters())))
    assert all(p.grad is None for p in net.model_parameters())


def test_transfer_weight_is_validated_and_refused_where_it_would_be_ignored():
    with pytest.raises(ValueError, match="transfer_weight"):
        ObjectiveConfig(transfer_weight=-1.0)
    with pytest.raises(ValueError, match="transfer_adversary"):
        make_objective(SRbVAE(tiny_config(variant="rbvae")), ObjectiveConfig(transfer_weight=1))
    with pytest.raises(ValueError, match="transfer_sees_e needs transfer_weight"):
        ObjectiveConfig(transfer_sees_e=True)
    assert SRbVAE(tiny_config(variant="vae"), transfer_adversary=True).disc_transfer is None
    with pytest.raises(ValueError, match="needs a reference set"):
        make_objective(SRbVAE(tiny_config(variant="vae")), ObjectiveConfig(transfer_weight=1))
    assert (
        SRbVAE(
            tiny_config(variant="rbvae"), with_discriminators=False, transfer_adversary=True
        ).disc_transfer
        is None
    )


def test_d_tau_beside_e_judges_the_pair_and_tells_a_transfer_that_ignores_e():
    """Real pairs are unlabelled images with their own e; transfer pairs carry the e they were
    made from. Only a d_tau that sees e can judge whether an image shows what e says."""
    torch.manual_seed(0)
    net = _transfer_net("srbvae", sees_e=True).eval()
    objective = make_objective(net, ObjectiveConfig(transfer_weight=1.0, transfer_sees_e=True))
    x, e = images(4, 32), torch.randn(4, net.cfg.e_dim)
    assert not torch.allclose(objective._judge_transfer(x, e), objective._judge_transfer(x, -e))
    result = objective.model_phase(images(4, 32), images(4, 32))
    assert result.cache["e_transfer"].shape == (4, net.cfg.e_dim)


def _output_gradient_ratio(cfg: ObjectiveConfig) -> float:
    """How hard the adversarial terms push the generated images against how hard the image
    reconstruction pushes the reconstructed ones (gradient norms on the generator's outputs)."""
    torch.manual_seed(0)
    net = SRbVAE(tiny_config())
    outputs = []
    net.generator.register_forward_hook(lambda module, args, out: outputs.append(out))
    result = make_objective(net, cfg).model_phase(images(8, 32), images(8, 32))
    (out,) = outputs  # one generator pass: 16 reconstructions, then 16 prior samples
    (g_adv,) = torch.autograd.grad(result.terms["adversarial_p"], out, retain_graph=True)
    (g_rec,) = torch.autograd.grad(result.terms["recon_x"], out)
    return (g_adv[16:].norm() / g_rec[:16].norm()).item()


def test_adversarial_balance_brings_the_adversarial_gradient_to_the_reconstructions_scale():
    # With the paper's weights the summed reconstruction drowns the adversarial terms.
    assert _output_gradient_ratio(ObjectiveConfig()) < 1e-4
    # An untrained tiny discriminator asks for more than MAX_BALANCED_WEIGHT at lambda 0.01.
    for balance in (1.0, 0.1):
        cfg = ObjectiveConfig(adversarial_balance=balance, laplace_scale=1.0)
        assert _output_gradient_ratio(cfg) == pytest.approx(balance, rel=1e-3)


def test_the_balance_weights_the_generator_path_and_leaves_the_encoder_path_alone():
    net = SRbVAE(tiny_config())
    fixed = make_objective(net, ObjectiveConfig(adversarial_weight=3.0))
    result = fixed.model_phase(images(4, 32), images(4, 32))
    assert result.stats["weight/adversarial_p"] == 3.0
    assert torch.allclose(result.terms["adversarial_q"], 3 * result.stats["loss/adversarial_q"])
    balanced = make_objective(net, ObjectiveConfig(adversarial_balance=1.0))
    result = balanced.model_phase(images(4, 32), images(4, 32))
    weight = result.stats["weight/adversarial_p"]
    assert weight > 10 and not weight.requires_grad
    assert torch.allclose(
        result.terms["adversarial_p"], weight * result.stats["loss/adversarial_p"]
    )
    # The encoder path keeps adversarial_weight (1): it plays the KL's part for q.
    assert torch.equal(result.terms["adversarial_q"], result.stats["loss/adversarial_q"])


def test_adversarial_balance_is_validated_and_refused_where_it_would_be_ignored():
    with pytest.raises(ValueError, match="adversarial_balance"):
        ObjectiveConfig(adversarial_balance=-1.0)
    for variant in ("rbvae", "vae"):
        with pytest.raises(ValueError, match="srbvae only"):
            make_objective(
                SRbVAE(tiny_config(variant=variant)), ObjectiveConfig(adversarial_balance=1)
            )


@pytest.mark.parametrize("variant", ["srbvae", "rbvae", "vae"])
def test_the_loss_terms_sum_to_the_loss(variant):
    net = SRbVAE(tiny_config(variant=variant))
    result = make_objective(net).model_phase(images(4, 32), images(4, 32))
    assert torch.allclose(sum(result.terms.values()), result.loss)
