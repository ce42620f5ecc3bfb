"""Image grids of a prepared dataset."""

from __future__ import annotations

import numpy as np
from PIL import Image

from training.__main__ import main
from training.data.cache import PreparedDataset
from training.data.faces.build import FaceSizes, build_faces
from training.data.preview import GAP, LABEL_HEIGHT, class_grid, split_grid, tile


def test_tile_places_images_row_major():
    images = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    mosaic = tile(images, cols=3)
    assert mosaic.shape == (2 * 4 + GAP, 3 * 4 + 2 * GAP, 3)
    assert mosaic[4 + GAP, 4 + GAP, 0] == 4 and mosaic[-1, -1, 0] == 255


def test_grids_and_preview_command(tmp_path, capsys):
    ds = PreparedDataset.open(
        build_faces(tmp_path / "f", resolution=16, sizes=FaceSizes(4, 20, 1, 1), progress=False)
    )
    grid = split_grid(ds, ["reference", "unlabelled"], rows=1, cols=4)
    assert grid.shape[1] == 4 * 16 + 3 * GAP and grid.shape[0] > 2 * (16 + LABEL_HEIGHT)
    assert class_grid(ds, "unlabelled", cols=2).shape[1] == 2 * 16 + GAP
    assert (
        main(
            [
                "data",
                "preview",
                str(tmp_path / "f"),
                "--out",
                str(tmp_path / "g.png"),
                "--scale",
                "2",
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "g.png").width == 2 * (12 * 16 + 11 * GAP)
