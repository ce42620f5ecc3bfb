from __future__ import annotations

import numpy as np

from photos import load_photo
from tests.utils.images import jpeg_rotated


def test_exif_orientation_is_applied_from_bytes_and_from_a_file(tmp_path):
    data = jpeg_rotated(6)  # 64x32, left red, right blue; EXIF: turn 90 degrees clockwise
    path = tmp_path / "turned.jpg"
    path.write_bytes(data)
    for source in (data, path, str(path)):
        photo = load_photo(source)
        assert photo.shape == (64, 32, 3) and photo.dtype == np.uint8
        assert photo[8, 16, 0] > 200 and photo[8, 16, 2] < 60  # red on top
        assert photo[56, 16, 2] > 200 and photo[56, 16, 0] < 60  # blue below


def test_a_large_jpeg_can_be_decoded_reduced(tmp_path):
    from PIL import Image

    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(tmp_path / "big.jpg", quality=90)
    assert load_photo(tmp_path / "big.jpg", max_side=1000).shape == (750, 1000, 3)
    assert load_photo(tmp_path / "big.jpg").shape == (3000, 4000, 3)
