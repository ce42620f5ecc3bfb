import numpy as np

from training.evaluation.probes import (
    linear_classifier_accuracy,
    linear_regression_mae,
    mean_predictor_mae,
    mlp_classifier_accuracy,
    mlp_regression_mae,
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


def test_the_mlp_reads_a_factor_that_is_in_the_features_but_not_linearly():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 4))
    y = np.stack([np.abs(x[:, 0]), x[:, 1] * x[:, 2]], axis=1) / 3  # no linear trace at all
    fit, score = slice(0, 1000), slice(1000, None)
    floor = mean_predictor_mae(y[fit], y[score])
    linear = linear_regression_mae(x[fit], y[fit], x[score], y[score])
    mlp = mlp_regression_mae(x[fit], y[fit], x[score], y[score], steps=1500)
    assert (linear > 0.9 * floor).all()
    assert (mlp < 0.4 * floor).all()
    noise = rng.normal(size=(2000, 4))
    assert (
        mlp_regression_mae(noise[fit], y[fit], noise[score], y[score], steps=1500) > 0.8 * floor
    ).all()


def test_the_mlp_classifier_separates_classes_no_line_separates():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(2000, 2))
    labels = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)  # XOR of the signs
    linear = linear_classifier_accuracy(x[:1000], labels[:1000], x[1000:], labels[1000:], 2)
    mlp = mlp_classifier_accuracy(x[:1000], labels[:1000], x[1000:], labels[1000:], 2, steps=1500)
    assert linear.mean() < 0.7
    assert mlp.min() > 0.9
