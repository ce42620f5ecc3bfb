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
