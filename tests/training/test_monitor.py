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
