import numpy as np

from training.evaluation.probes import (
    linear_classifier_accuracy,
    linear_regression_mae,
    mean_predictor_mae,
)


def test_regression_recovers_a_linear_factor_and_ignores_noise_features():
    rng = np.random.default_rng(0)
    y = rng.random((600, 2))
    informative = np.hstack([y @ rng.normal(size=(2, 3)), rng.normal(size=(600, 5))])
    noise = rng.normal(size=(600, 8))
    good = linear_regression_mae(informative[:300], y[:300], informative[300:], y[300:])
    bad = linear_regression_mae(noise[:300], y[:300], noise[300:], y[300:])
    floor = mean_predictor_mae(y[:300], y[300:])
    assert good.max() < 0.01
    assert (bad > 0.8 * floor).all()


def test_classifier_separates_separable_classes_and_not_noise():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 800)
    centres = rng.normal(size=(4, 6)) * 4
    x = centres[labels] + rng.normal(size=(800, 6))
    acc = linear_classifier_accuracy(x[:400], labels[:400], x[400:], labels[400:], 4)
    assert acc.min() > 0.9
    noise_acc = linear_classifier_accuracy(
        rng.normal(size=(400, 6)), labels[:400], rng.normal(size=(400, 6)), labels[400:], 4
    )
    assert noise_acc.mean() < 0.45
