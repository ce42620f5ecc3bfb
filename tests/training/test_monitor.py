from training.monitor import CollapseMonitor


def test_a_winning_discriminator_is_reported_after_patience():
    monitor = CollapseMonitor(patience=3)
    won = {"disc/acc_xi": 1.0, "disc/acc_gamma": 0.995}
    assert [monitor.update(won) for _ in range(3)][:2] == [None, None]
    assert "collapsed" in monitor.update(won)
    assert monitor.update({"disc/acc_xi": 0.8, "disc/acc_gamma": 0.7}) is None


def test_a_blind_discriminator_is_reported():
    monitor = CollapseMonitor(patience=2)
    blind = {"disc/acc_xi": 0.5, "disc/acc_gamma": 0.52}
    monitor.update(blind)
    assert "chance" in monitor.update(blind)


def test_variants_without_discriminators_are_never_reported():
    assert CollapseMonitor(patience=1).update({"loss/kl": 1.0}) is None


def test_the_transfer_adversary_is_reported_when_it_wins_but_not_at_chance():
    monitor = CollapseMonitor(patience=2)
    monitor.update({"disc/acc_tau": 1.0})
    assert "collapsed" in monitor.update({"disc/acc_tau": 1.0})
    at_chance = CollapseMonitor(patience=1)
    assert at_chance.update({"disc/acc_tau": 0.5, "loss/domain": 0.7}) is None
    # The estimators at chance are still reported beside it.
    assert "chance" in at_chance.update(
        {"disc/acc_xi": 0.5, "disc/acc_gamma": 0.5, "disc/acc_tau": 0.6}
    )


def test_a_loss_term_that_drowns_another_at_the_generator_is_reported():
    monitor = CollapseMonitor(patience=2)
    drowned = {"grad/recon_x/generator": 1.4e5, "grad/adversarial/generator": 13.0}
    assert monitor.update(drowned) is None
    # An interval without measured gradients neither counts nor resets.
    assert monitor.update({"loss/recon_x_u": 1.0}) is None
    warning = monitor.update(drowned)
    assert "recon_x sends 1.08e+04 times the gradient of adversarial" in warning
    balanced = {"grad/recon_x/generator": 1.4e5, "grad/adversarial/generator": 9e4}
    assert monitor.update(balanced) is None
    # Terms that do not reach the generator (the KL terms) are not compared.
    assert CollapseMonitor(patience=1).update({"grad/kl/generator": 0.0, **balanced}) is None


def test_a_reconstruction_that_stays_far_above_its_lowest_is_reported():
    monitor = CollapseMonitor(patience=3)
    assert monitor.update({"loss/recon_x_u": 11_000.0}) is None
    # A setback that recovers within the patience is part of adding a term to a trained model.
    for value in (40_000.0, 39_000.0, 12_000.0, 11_500.0, 39_000.0, 39_000.0):
        assert monitor.update({"loss/recon_x_u": value}) is None
    warning = monitor.update({"loss/recon_x_u": 38_500.0})
    assert "loss/recon_x_u has stayed at 3.5 times its lowest (11000)" in warning
    # The VAE's single reconstruction term is watched the same way.
    vae = CollapseMonitor(patience=1)
    vae.update({"loss/recon_x": 100.0})
    assert "loss/recon_x has stayed" in vae.update({"loss/recon_x": 250.0})


def test_a_generator_that_ignores_its_codes_is_reported():
    monitor = CollapseMonitor(patience=3)
    # A first leg's generator that drew blank images whatever z and e (step 300 of one).
    ignored = {
        "grad/recon_x/generator": 83_800.0,
        "grad/recon_x/encoder_z": 29.6,
        "grad/recon_x/encoder_e": 34.1,
    }
    assert [monitor.update(ignored) for _ in range(2)] == [None, None]
    # An interval without measured gradients neither counts nor resets.
    assert monitor.update({"loss/recon_x_u": 1.0}) is None
    warning = monitor.update(ignored)
    assert "sends the encoders 0.00041 of its gradient on the generator for 3 intervals" in warning
    # The codes used again (the same run's balance lowered, step 300) end the count.
    used = {**ignored, "grad/recon_x/encoder_z": 391_000.0, "grad/recon_x/generator": 530_000.0}
    assert monitor.update(used) is None
    assert monitor.update(ignored) is None


def test_an_early_dip_in_the_codes_share_is_not_reported():
    monitor = CollapseMonitor(patience=5)
    shares = (0.0022, 0.064, 0.00023, 0.00035, 0.00026, 0.00086, 0.027, 0.052)
    for share in shares:
        means = {"grad/recon_x/generator": 1e6, "grad/recon_x/encoder_z": share * 1e6}
        assert monitor.update(means) is None


def test_a_generator_that_stops_using_e_is_reported():
    monitor = CollapseMonitor(patience=3)
    # The wide 64x64 second leg: a dip as its new terms arrive, healthy, then grey transfers.
    for reach in (0.0037, 0.0088, 0.035, 0.051, 0.034, 0.042):
        assert monitor.update({"reach/e": reach}) is None
    assert [monitor.update({"reach/e": 0.0117}) for _ in range(2)] == [None, None]
    assert monitor.update({"loss/recon_x_u": 1.0}) is None  # not measured: no count
    warning = monitor.update({"reach/e": 0.0117})
    assert "stayed at 0.23 of its highest (0.051) for 3 intervals" in warning
    assert monitor.update({"reach/e": 0.03}) is None
