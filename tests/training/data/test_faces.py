"""Synthetic faces: factor ranges, determinism, and expressions confined to their region."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from training.data.cache import PreparedDataset
from training.data.faces import (
    CLASS_NAMES,
    NEUTRAL,
    PROTOTYPES,
    Common,
    align,
    expression_region,
    render_face,
    sample_common,
    sample_expression,
)
from training.data.faces.build import FaceJob, FaceSizes, build_faces, render_job
from training.data.faces.factors import COMMON_NAMES, EXPRESSION_NAMES, NEUTRAL_LABEL, POSE_NAMES
from training.data.faces.render import TIGHT_ZOOM, ZOOM

POSE = [COMMON_NAMES.index(n) for n in POSE_NAMES]  # columns of the pose in a common table


def test_sampled_factors_are_in_unit_range():
    rng = np.random.default_rng(0)
    common = np.stack([sample_common(rng).to_array() for _ in range(500)])
    expr = np.stack([sample_expression(rng, i % 7).to_array() for i in range(700)])
    assert common.shape == (500, len(COMMON_NAMES)) and expr.shape == (700, len(EXPRESSION_NAMES))
    for table in (common, expr):
        assert table.dtype == np.float32 and table.min() >= 0 and table.max() <= 1


def test_sampled_expressions_are_nearest_their_own_prototype():
    rng = np.random.default_rng(1)
    protos = np.stack([PROTOTYPES[name].to_array() for name in CLASS_NAMES])
    hits = 0
    for i in range(700):
        e = sample_expression(rng, i % 7).to_array()
        hits += int(np.argmin(((protos - e) ** 2).sum(axis=1)) == i % 7)
    assert hits / 700 > 0.95


def test_render_is_deterministic_and_sized():
    common = sample_common(np.random.default_rng(2))
    a = render_face(common, PROTOTYPES["anger"], 64)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert (a == render_face(common, PROTOTYPES["anger"], 64)).all()
    assert render_face(common, NEUTRAL, 32).shape == (32, 32, 3)


@pytest.mark.parametrize("zoom", [ZOOM, TIGHT_ZOOM])
@pytest.mark.parametrize("seed", range(4))
def test_expressions_differ_only_in_the_expression_region(seed, zoom):
    common = sample_common(np.random.default_rng(seed))
    region = expression_region(common, 64, zoom)
    assert 0.1 < region.mean() < 0.7
    neutral = render_face(common, NEUTRAL, 64, zoom)
    for name in CLASS_NAMES:
        changed = (render_face(common, PROTOTYPES[name], 64, zoom) != neutral).any(axis=-1)
        assert changed.sum() > 20, name  # the expression shows
        assert not (changed & ~region).any(), name  # and touches nothing else


def test_common_factors_change_the_face_outside_the_region():
    common = Common()
    moved = dataclasses.replace(common, hair_colour=0.9, background_hue=0.1)
    changed = (render_face(common) != render_face(moved)).any(axis=-1)
    assert (changed & ~expression_region(common)).mean() > 0.3


def test_render_job_depends_only_on_seed_split_and_index():
    a = render_job(FaceJob(0, "unlabelled", 5, 32))
    b = render_job(FaceJob(0, "unlabelled", 5, 32))
    c = render_job(FaceJob(0, "eval_fit", 5, 32))
    assert (a.image == b.image).all() and a.label == b.label
    assert not (a.image == c.image).all()
    ref = render_job(FaceJob(0, "reference", 5, 32))
    assert ref.label == NEUTRAL_LABEL and (ref.factors == NEUTRAL.to_array()).all()


def test_alignment_removes_the_pose_and_keeps_the_person():
    common = sample_common(np.random.default_rng(4))
    posed = dataclasses.replace(common, shift_x=0.9, shift_y=0.1, rotation=0.95)
    assert not (render_face(common) == render_face(posed)).all()  # the pose shows unaligned
    assert (render_face(align(common)) == render_face(align(posed))).all()
    kept = [n for n in COMMON_NAMES if n not in POSE_NAMES]
    assert [getattr(align(posed), n) for n in kept] == [getattr(posed, n) for n in kept]


def test_aligned_and_unaligned_jobs_show_the_same_people():
    rest = [i for i in range(len(COMMON_NAMES)) if i not in POSE]
    for index in range(5):
        a = render_job(FaceJob(0, "unlabelled", index, 32))
        u = render_job(FaceJob(0, "unlabelled", index, 32, aligned=False))
        assert a.label == u.label and (a.factors == u.factors).all()
        assert (a.common[rest] == u.common[rest]).all() and (a.common[POSE] == 0.5).all()
    # The unaligned build varies the pose, so its faces differ from the aligned ones.
    assert not (a.image == u.image).all() and not (u.common[POSE] == 0.5).all()


def test_build_records_whether_faces_are_aligned(tmp_path):
    sizes = FaceSizes(2, 3, 1, 1)
    kwargs = {"resolution": 16, "sizes": sizes, "progress": False}
    aligned = PreparedDataset.open(build_faces(tmp_path / "a", **kwargs))
    posed = PreparedDataset.open(build_faces(tmp_path / "p", aligned=False, **kwargs))
    assert aligned.meta["aligned"] is True and posed.meta["aligned"] is False
    assert (aligned["unlabelled"].common[:, POSE] == 0.5).all()
    assert (posed["unlabelled"].common[:, POSE] != 0.5).any()


def test_build_is_the_same_for_any_worker_count(tmp_path):
    sizes = FaceSizes(6, 10, 3, 3)
    one = PreparedDataset.open(
        build_faces(tmp_path / "one", resolution=32, sizes=sizes, progress=False)
    )
    two = PreparedDataset.open(
        build_faces(tmp_path / "two", resolution=32, sizes=sizes, workers=2, progress=False)
    )
    assert one.source == "faces" and one.class_names == [*CLASS_NAMES, "neutral"]
    assert one.factor_names == EXPRESSION_NAMES and one.common_factor_names == COMMON_NAMES
    for split in ("reference", "unlabelled", "eval_fit", "eval_score"):
        for key in ("images", "factors", "labels", "common"):
            assert (getattr(one[split], key) == getattr(two[split], key)).all(), (split, key)
    u = one["unlabelled"]
    assert u.images.shape == (10, 32, 32, 3) and u.common.shape == (10, len(COMMON_NAMES))
    assert set(u.labels.tolist()) <= set(range(7))
    assert (one["reference"].labels == NEUTRAL_LABEL).all()
    assert (one["reference"].factors == NEUTRAL.to_array()).all()


def test_a_tighter_framing_gives_the_expression_more_of_the_image(tmp_path):
    rng = np.random.default_rng(0)
    people = [align(sample_common(rng)) for _ in range(8)]

    def expression_share(zoom):
        share = [
            (render_face(c, PROTOTYPES[name], 32, zoom) != render_face(c, NEUTRAL, 32, zoom)).mean()
            for c in people
            for name in CLASS_NAMES
        ]
        return float(np.mean(share))

    assert expression_share(TIGHT_ZOOM) > 1.5 * expression_share(ZOOM)
    sizes = FaceSizes(2, 3, 1, 1)
    tight = build_faces(tmp_path / "t", resolution=16, sizes=sizes, zoom=TIGHT_ZOOM, progress=False)
    assert PreparedDataset.open(tight).meta["zoom"] == TIGHT_ZOOM
