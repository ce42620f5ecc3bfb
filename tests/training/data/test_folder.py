"""Image folders: every Pillow format converted to RGB, unreadable files skipped, never a crash."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from training.data.cache import PreparedDataset
from training.data.folder import build_folder, list_images


def _awkward_folder(root):
    """One file of each troublesome kind; returns the names expected to be skipped."""
    root.mkdir(parents=True)
    Image.new("RGB", (300, 150), (200, 30, 40)).save(root / "wide.jpg", quality=95)
    rgba = Image.new("RGBA", (40, 40), (0, 255, 0, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 40, 20))
    rgba.save(root / "rgba.png")
    Image.new("LA", (30, 50), (128, 255)).save(root / "la.png")
    Image.new("L", (20, 20), 90).save(root / "grey.png")
    deep = np.full((32, 32), 65535, np.uint16)
    deep[:, 16:] = 32896  # 128 * 257
    Image.fromarray(deep).save(root / "deep16.png")
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(root / "cmyk.jpg", quality=95)
    palette = Image.new("P", (32, 32), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.save(root / "palette.gif")
    good = root / "truncated.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    good.write_bytes(good.read_bytes()[:200])
    (root / "notes.txt").write_text("not an image\n")
    (root / "noise.jpg").write_bytes(np.random.default_rng(1).bytes(500))
    (root / ".hidden.png").write_bytes(b"ignored")
    return {"truncated.png", "notes.txt", "noise.jpg"}


def test_awkward_files_are_converted_or_skipped_with_a_warning(tmp_path, caplog):
    skipped = _awkward_folder(tmp_path / "unlabelled")
    (tmp_path / "reference").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "reference" / "a.png")
    with caplog.at_level(logging.WARNING, logger="training.data.folder"):
        out = build_folder(
            tmp_path / "out",
            reference=tmp_path / "reference",
            unlabelled=tmp_path / "unlabelled",
            resolution=16,
            progress=False,
        )
    for name in skipped:
        assert any(name in r.getMessage() for r in caplog.records), name
    ds = PreparedDataset.open(out, verify=True)
    u = ds["unlabelled"]
    names = sorted(
        p.name for p, _ in list_images(tmp_path / "unlabelled")[0] if p.name not in skipped
    )
    assert len(u) == len(names) == 7 and len(ds["reference"]) == 1
    assert u.images.shape == (7, 16, 16, 3) and u.images.dtype == np.uint8
    assert sorted(ds.meta["skipped"]) == sorted(str(tmp_path / "unlabelled" / n) for n in skipped)
    image = dict(zip(names, u.images, strict=True))
    assert tuple(image["deep16.png"][8, 2]) == (255, 255, 255)  # 16-bit scaled, not clipped
    assert tuple(image["deep16.png"][8, 13]) == (128, 128, 128)
    assert image["cmyk.jpg"][8, 8, 0] > 200 and image["cmyk.jpg"][8, 8, 1:].max() < 60
    assert tuple(image["palette.gif"][8, 8]) == (0, 0, 255)
    assert tuple(image["rgba.png"][2, 8]) == (0, 0, 0) and tuple(image["rgba.png"][13, 8]) == (
        0,
        255,
        0,
    )
    assert abs(int(image["wide.jpg"][8, 8, 0]) - 200) < 8  # centre crop of a resized photo


@pytest.mark.parametrize("side", [40, 60])  # 1600 px: Pillow warns; 3600 px: Pillow refuses
def test_decompression_bombs_are_skipped(tmp_path, caplog, side):
    for d in ("reference", "unlabelled"):
        (tmp_path / d).mkdir()
        Image.new("RGB", (20, 20)).save(tmp_path / d / "small.png")
    Image.new("RGB", (side, side)).save(tmp_path / "unlabelled" / "bomb.png")
    with caplog.at_level(logging.WARNING, logger="training.data.folder"):
        out = build_folder(
            tmp_path / "out",
            reference=tmp_path / "reference",
            unlabelled=tmp_path / "unlabelled",
            resolution=8,
            max_pixels=1000,
            progress=False,
        )
    assert len(PreparedDataset.open(out)["unlabelled"]) == 1
    assert any(
        "bomb.png" in r.getMessage() and "decompression bomb" in r.getMessage()
        for r in caplog.records
    )
    assert Image.MAX_IMAGE_PIXELS != 1000  # the guard is restored


def test_subdirectories_are_classes_and_eval_splits_are_held_out(tmp_path):
    for cls in ("happy", "sad"):
        (tmp_path / "u" / cls).mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (12, 12), (i, 0, 0)).save(tmp_path / "u" / cls / f"{i}.png")
    (tmp_path / "r").mkdir()
    Image.new("RGB", (12, 12)).save(tmp_path / "r" / "n.png")
    ds = PreparedDataset.open(
        build_folder(
            tmp_path / "out",
            reference=tmp_path / "r",
            unlabelled=tmp_path / "u",
            resolution=8,
            eval_size=4,
            progress=False,
        )
    )
    assert ds.class_names == ["happy", "sad"]
    assert [len(ds[s]) for s in ("unlabelled", "eval_fit", "eval_score")] == [6, 2, 2]
    assert set(ds["eval_fit"].labels.tolist()) <= {0, 1} and (ds["reference"].labels == -1).all()
    assert ds["unlabelled"].factors.shape == (6, 0)
