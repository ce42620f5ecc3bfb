"""Digit style: the transforms of paper A.3.1, the factor table, the split plan and the build."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.data.factories import fake_digits
from training.data.cache import PreparedDataset
from training.data.digits import (
    FACTOR_NAMES,
    DigitJob,
    DigitSizes,
    Style,
    build_digits,
    edges,
    plan_digits,
    render_digit,
    sample_styles,
    to_uint8,
    transform,
)


@pytest.fixture(scope="module")
def edge():
    digits, _ = fake_digits(2)
    return edges(digits[1])  # a ring


def test_edges_keep_only_the_boundary():
    digits, _ = fake_digits(2)
    ring = digits[1]
    e = edges(ring)
    assert e.shape == (64, 64) and e.min() >= 0 and e.max() == 1.0
    # The inside of a filled blob has no edges: only its outline lights up.
    blob = np.zeros((28, 28), np.uint8)
    blob[6:22, 6:22] = 255
    assert edges(blob)[32, 32] == 0 and edges(blob)[13, 32] > 0.5


def test_sampled_factors_are_in_unit_range():
    styles = sample_styles(np.random.default_rng(0), 2000)
    factors = np.stack([s.factors() for s in styles])
    assert factors.shape == (2000, len(FACTOR_NAMES)) and factors.dtype == np.float32
    assert factors.min() >= 0 and factors.max() <= 1
    kernels = {s.kernel for s in styles}
    assert kernels == set(range(1, 11))
    np.testing.assert_allclose(factors[:, 2:].sum(axis=1), 1.0, atol=1e-6)
    assert all(0.5 <= s.scale <= 1.0 for s in styles)
    # width = (k - 1) / 9 and scale = (s - 0.5) / 0.5
    s = styles[0]
    np.testing.assert_allclose(
        s.factors()[:2], [(s.kernel - 1) / 9, (s.scale - 0.5) / 0.5], rtol=1e-6
    )


def test_larger_kernel_gives_more_ink(edge):
    ink = [transform(edge, Style(k, (1 / 3, 1 / 3, 1 / 3), 1.0)).sum() for k in range(1, 11)]
    assert all(a < b for a, b in zip(ink, ink[1:], strict=False))


def test_colour_is_proportional_to_c_hat(edge):
    c_hat = (0.2, 0.5, 0.3)
    image = to_uint8(transform(edge, Style(4, c_hat, 0.8)), 64).astype(np.float64)
    total = image.sum(axis=-1, keepdims=True)  # c_hat sums to 1, so this is the grey level
    assert total.max() > 200
    np.testing.assert_allclose(image, total * np.asarray(c_hat), atol=1.5)


@pytest.mark.parametrize("scale", [0.5, 0.6, 0.77])
def test_downscaled_digit_has_empty_borders(edge, scale):
    image = transform(edge, Style(10, (1 / 3, 1 / 3, 1 / 3), scale))
    side = round(64 * scale)
    margin = (64 - side) // 2
    assert margin > 0
    for border in (
        image[:margin],
        image[margin + side :],
        image[:, :margin],
        image[:, margin + side :],
    ):
        assert not border.any()
    assert image[margin : margin + side, margin : margin + side].any()


def test_reference_digit_is_white_edges_on_black():
    digits, labels = fake_digits(1)
    item = render_digit(DigitJob(digits[0], int(labels[0]), None, 64))
    assert item.image.dtype == np.uint8 and item.image.shape == (64, 64, 3)
    assert (item.image[..., 0] == item.image[..., 1]).all() and item.image.max() == 255
    assert item.label == 0


SMALL = DigitSizes(10, 20, 5, 5)


def _plan(seed, sizes=SMALL):
    train, test = fake_digits(40, seed=1), fake_digits(20, seed=2)
    return plan_digits(train, test, seed=seed, resolution=64, sizes=sizes)


def test_plan_is_deterministic_and_uses_each_unlabelled_digit_twice():
    a, b, c = _plan(0), _plan(0), _plan(1)
    assert [j.style for j in a["unlabelled"]] == [j.style for j in b["unlabelled"]]
    assert [j.style for j in a["unlabelled"]] != [j.style for j in c["unlabelled"]]
    unlabelled = a["unlabelled"]
    for first, second in zip(unlabelled[::2], unlabelled[1::2], strict=True):
        assert (first.digit == second.digit).all() and first.style != second.style
    assert all(j.style is None for j in a["reference"])


def test_plan_keeps_reference_unlabelled_and_eval_splits_disjoint():
    train_x, train_y = fake_digits(40, seed=1)
    train_x = np.arange(40, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    test_x = 100 + np.arange(20, dtype=np.uint8)[:, None, None] * np.ones((1, 28, 28), np.uint8)
    plan = plan_digits(
        (train_x, train_y),
        (test_x, train_y[:20]),
        seed=0,
        resolution=64,
        sizes=DigitSizes(20, 40, 10, 10),
    )
    ids = {split: {int(j.digit[0, 0]) for j in jobs} for split, jobs in plan.items()}
    assert len(ids["reference"]) == 20 and len(ids["unlabelled"]) == 20
    assert not ids["reference"] & ids["unlabelled"]
    assert (
        not ids["eval_fit"] & ids["eval_score"] and len(ids["eval_fit"] | ids["eval_score"]) == 20
    )


def test_plan_refuses_sizes_beyond_mnist():
    with pytest.raises(ValueError, match="training images"):
        _plan(0, DigitSizes(30, 20, 5, 5))


@pytest.mark.parametrize("resolution", [64, 32])
def test_build_writes_all_splits(tmp_path, mnist_dir, resolution):
    root, md5 = mnist_dir
    sizes = DigitSizes(8, 12, 4, 4)
    out = build_digits(
        tmp_path / "digits",
        mnist_dir=root,
        mnist_checksums=md5,
        resolution=resolution,
        sizes=sizes,
        progress=False,
    )
    ds = PreparedDataset.open(out, verify=True)
    assert ds.source == "digits" and ds.factor_names == FACTOR_NAMES and ds.class_names[3] == "3"
    for split, n in [("reference", 8), ("unlabelled", 12), ("eval_fit", 4), ("eval_score", 4)]:
        s = ds[split]
        assert s.images.shape == (n, resolution, resolution, 3) and s.images.dtype == np.uint8
        assert s.factors.shape == (n, 5) and s.factors.dtype == np.float32
        assert s.labels.dtype == np.int64 and set(s.labels.tolist()) <= set(range(10))
        assert s.factors.min() >= 0 and s.factors.max() <= 1
    np.testing.assert_allclose(
        ds["reference"].factors, [[0, 1, 1 / 3, 1 / 3, 1 / 3]] * 8, rtol=1e-6
    )


def test_build_is_deterministic_for_a_seed(tmp_path, mnist_dir):
    root, md5 = mnist_dir
    sizes = DigitSizes(4, 6, 2, 2)

    def build(name, seed):
        out = build_digits(
            tmp_path / name,
            mnist_dir=root,
            mnist_checksums=md5,
            sizes=sizes,
            seed=seed,
            progress=False,
        )
        return PreparedDataset.open(out)["unlabelled"]

    a, b, c = build("a", 0), build("b", 0), build("c", 1)
    assert (a.images == b.images).all() and (a.factors == b.factors).all()
    assert not (a.factors == c.factors).all()
