"""Prepared-dataset cache: layout, memory-mapped loading, compaction, refusal to overwrite."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.data.cache import DatasetWriter, Item, PreparedDataset


def _items(n, res=8, skip=()):
    for i in range(n):
        if i in skip:
            yield None
            continue
        image = np.full((res, res, 3), i, np.uint8)
        yield Item(image, np.array([i / 10, 0.5], np.float32), i % 3, np.array([i], np.float32))


def _write(out, skip=(), **meta):
    writer = DatasetWriter(out, resolution=8, factor_names=["a", "b"], common_factor_names=["c"])
    for split in ("reference", "unlabelled", "eval_fit", "eval_score"):
        writer.write_split(split, _items(5, skip=skip), 5)
    return writer.finish(source="test", class_names=["x", "y", "z"], **meta)


def test_roundtrip_is_memory_mapped_with_shapes_and_dtypes(tmp_path):
    ds = PreparedDataset.open(_write(tmp_path / "ds", seed=3), verify=True)
    u = ds["unlabelled"]
    assert isinstance(u.images, np.memmap) and not u.images.flags.writeable
    assert u.images.shape == (5, 8, 8, 3) and u.images.dtype == np.uint8
    assert u.factors.shape == (5, 2) and u.factors.dtype == np.float32
    assert u.labels.tolist() == [0, 1, 2, 0, 1] and u.labels.dtype == np.int64
    assert u.common[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert ds.factor_names == ["a", "b"] and ds.class_names == ["x", "y", "z"]
    assert ds.meta["seed"] == 3 and ds.resolution == 8 and len(u) == 5
    with pytest.raises(KeyError, match="no split"):
        ds["train"]


def test_skipped_items_leave_no_rows(tmp_path):
    ds = PreparedDataset.open(_write(tmp_path / "ds", skip={1, 3}), verify=True)
    assert ds["reference"].images[:, 0, 0, 0].tolist() == [0, 2, 4]
    assert ds.meta["sizes"]["reference"] == 3


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    out = _write(tmp_path / "ds")
    with pytest.raises(FileExistsError):
        DatasetWriter(out, resolution=8, factor_names=[])
    DatasetWriter(out, resolution=8, factor_names=[], overwrite=True).abort()
    assert (out / "meta.json").is_file()


def test_verify_detects_a_changed_file(tmp_path):
    out = _write(tmp_path / "ds")
    np.save(out / "reference_labels.npy", np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="reference_labels.npy"):
        PreparedDataset.open(out, verify=True)


def test_meta_is_plain_json(tmp_path):
    meta = json.loads((_write(tmp_path / "ds") / "meta.json").read_text())
    assert meta["sizes"] == {"reference": 5, "unlabelled": 5, "eval_fit": 5, "eval_score": 5}
    assert set(meta["sha256"]) == {
        f"{s}_{k}.npy" for s in meta["sizes"] for k in ("images", "factors", "labels", "common")
    }
