import numpy as np
import torch

from model import load_model
from model.checkpoint import export_inference
from model.networks import SRbVAE
from tests.model.conftest import tiny_config
from training.grids import transfers


def test_the_transfer_grid_shows_either_rendering(tmp_path):
    torch.manual_seed(0)
    export_inference(SRbVAE(tiny_config()), tmp_path, name="tiny")
    model = load_model(tmp_path)
    rng = np.random.default_rng(0)
    b, a = (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8) for n in (2, 3))
    drawn = np.asarray(transfers(model, b, a), dtype=np.int16)
    onto = np.asarray(transfers(model, b, a, render="input"), dtype=np.int16)
    assert drawn.shape == onto.shape == (3 * 34 + 2, 4 * 34 + 2, 3)  # 32 px cells, 2 px apart

    def cell(grid, r, c):
        return grid[2 + 34 * r : 34 * (r + 1), 2 + 34 * c : 34 * (c + 1)]

    # Row 1 is image b[0] and its transfers; rendered onto b[0] they are nearer it.
    source = cell(onto, 1, 0)
    assert np.array_equal(source, b[0])
    near = [
        np.mean([np.abs(cell(g, 1, c) - source).mean() for c in (1, 2, 3)]) for g in (onto, drawn)
    ]
    assert near[0] < near[1]
