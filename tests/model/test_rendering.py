from typing import get_args

import pytest
import torch

from contract.tasks import Render
from model.rendering import RENDER_MODES, Rendering, keep_input


def _images(seed: int, n: int = 2) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_an_edit_that_changes_nothing_answers_the_input_itself():
    x, rec = _images(0), _images(1)
    torch.testing.assert_close(keep_input(x, rec, rec, 0.08), x)


def test_where_the_edit_redraws_the_generated_pixels_replace_the_inputs():
    x, rec = _images(0), torch.zeros(2, 3, 16, 16)
    edited = rec.clone()
    edited[:, :, 4:12, 4:12] = 0.9  # the edit redraws a square; elsewhere it changes nothing
    out = keep_input(x, edited, rec, 0.08)
    # Inside the square (away from its 3x3-smoothed edge): the edit's pixels, not a ghost of x.
    torch.testing.assert_close(out[:, :, 6:10, 6:10], edited[:, :, 6:10, 6:10], atol=1e-4, rtol=0)
    # Away from it: the input, untouched.
    torch.testing.assert_close(out[:, :, :, :2], x[:, :, :, :2])


def test_a_small_change_is_added_to_the_input():
    x, rec = _images(0) * 0.5, torch.zeros(2, 3, 16, 16)
    edited = rec + 0.002  # far below the tolerance: kept weight about 1
    out = keep_input(x, edited, rec, 0.08)
    torch.testing.assert_close(out, x + 0.002, atol=5e-4, rtol=0)


def test_the_output_stays_in_the_image_range():
    x = torch.ones(1, 3, 8, 8)
    out = keep_input(x, torch.full_like(x, 0.02), torch.zeros_like(x), 0.08)
    assert out.max() <= 1.0


def test_generator_rendering_answers_the_edit_and_needs_no_reconstruction():
    edited = _images(2)
    r = Rendering()
    assert r.mode == "generator" and not r.needs_reconstruction()
    assert r.compose(_images(0), edited, None) is edited
    assert r.needs_reconstruction("input")
    with pytest.raises(ValueError, match="reconstructions"):
        r.compose(_images(0), edited, None, "input")


def test_records_round_trip_and_bad_ones_are_refused():
    r = Rendering("input", 0.05)
    assert Rendering.from_record(r.to_record()) == r
    assert Rendering.from_record(None) == Rendering()
    with pytest.raises(ValueError, match="mode"):
        Rendering.from_record({"mode": "pixels"})
    with pytest.raises(ValueError, match="tolerance"):
        Rendering("input", 0.0)


def test_the_contract_offers_the_same_modes_as_the_model():
    assert set(get_args(Render)) == set(RENDER_MODES)
