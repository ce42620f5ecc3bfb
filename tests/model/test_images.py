import numpy as np
import pytest
import torch
from PIL import Image

from model import images


def test_uint8_round_trip_is_exact():
    arr = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    x = images.uint8_to_tensor(arr)
    assert x.shape == (3, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(images.tensor_to_uint8(x), arr)


def test_fit_resizes_the_shorter_side_and_centre_crops():
    arr = np.zeros((40, 120, 3), dtype=np.uint8)
    arr[:, 40:80] = 255  # a white centre third: survives the centre crop
    out = images.fit(Image.fromarray(arr), 32)
    assert out.size == (32, 32)
    assert np.asarray(out)[:, 4:28].mean() > 240


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F"])
def test_every_common_mode_becomes_rgb(mode):
    im = Image.new("RGB", (20, 20), (200, 100, 50)).convert(mode)
    out = images.fit(im, 32)
    assert out.mode == "RGB" and out.size == (32, 32)


def test_sixteen_bit_pictures_are_scaled_not_clipped():
    arr = np.full((10, 10), 32768, dtype=np.uint16)
    out = images.to_rgb(Image.fromarray(arr))
    assert 120 <= np.asarray(out).mean() <= 135


def test_transparency_is_composited_over_black():
    im = Image.new("RGBA", (4, 4), (255, 255, 255, 0))
    assert np.asarray(images.to_rgb(im)).max() == 0


def test_to_pil_and_grid():
    pics = images.to_pil(torch.zeros(5, 3, 8, 8))
    assert [p.size for p in pics] == [(8, 8)] * 5
    assert images.make_grid(pics, columns=3, pad=1).size == (3 * 9 + 1, 2 * 9 + 1)
