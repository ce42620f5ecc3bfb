"""worker/photo.py: a photo as uploaded -> its face aligned for the model -> the edit pasted
back and encoded; untrusted bytes refused with the right error."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from contract.errors import InvalidPayload, NoFaceFound, UnreadableImage
from photos import photo_mask
from tests.utils import photo_uploads as uploads
from worker import photo

ZOOM = 1.8


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def astronaut():
    return uploads.astronaut_photo()


@pytest.fixture(scope="module")
def read_astronaut(astronaut):
    return photo.read_photo(uploads.encode(astronaut), "image", 32, ZOOM)


def test_a_photo_gives_its_face_aligned_at_the_models_resolution(read_astronaut, astronaut):
    assert read_astronaut.aligned.crop.shape == (32, 32, 3)
    assert np.array_equal(read_astronaut.pixels, astronaut) and not read_astronaut.jpeg
    described = read_astronaut.described()
    assert (described.width, described.height, described.used) == (512, 512, 0)
    (face,) = described.faces
    x, y, w, h = face.box
    assert x < 203 < x + w and y < 101 < y + h  # the astronaut's left eye, marked by hand


def test_the_edit_is_pasted_back_changing_only_the_face(read_astronaut, astronaut):
    edited = np.full((32, 32, 3), 20, np.uint8)
    out = photo.pasted(read_astronaut, edited)
    mask = photo_mask(astronaut.shape, read_astronaut.aligned.matrix, 32)
    assert out.shape == astronaut.shape
    assert np.array_equal(out[mask == 0], astronaut[mask == 0])
    inside = mask > 0.9
    diff = np.abs(out[inside].astype(int) - astronaut[inside].astype(int)).mean()
    assert diff > 10


def test_exif_rotation_is_applied_before_the_face_is_found(astronaut):
    data = uploads.encode(astronaut[:, 64:], "JPEG", orientation=6)  # 448 wide, 512 high
    read = photo.read_photo(data, "image", 32, ZOOM)
    assert read.pixels.shape == (512, 448, 3) and read.jpeg
    assert len(read.faces) == 1


def test_no_face_is_422_naming_the_upload():
    with pytest.raises(NoFaceFound, match="'attributes'") as caught:
        photo.read_photo(uploads.encode(uploads.no_face()), "attributes", 32, ZOOM)
    assert caught.value.http_status == 422


def test_a_face_index_picks_another_face_and_one_past_the_last_is_422():
    data = uploads.encode(uploads.two_face_scene().image)
    first = photo.read_photo(data, "image", 32, ZOOM)
    second = photo.read_photo(data, "image", 32, ZOOM, face=1)
    assert len(first.faces) == 2 and second.used == 1
    assert second.aligned.face == first.faces[1]
    with pytest.raises(InvalidPayload, match="face 2 was asked for, but 2 were found"):
        photo.read_photo(data, "image", 32, ZOOM, face=2)


def test_a_box_picks_the_face_it_overlaps_most_and_an_empty_box_is_422():
    data = uploads.encode(uploads.two_face_scene().image)
    faces = photo.read_photo(data, "image", 32, ZOOM).faces
    x, y, w, h = faces[1].box
    chosen = photo.read_photo(data, "image", 32, ZOOM, face=(x + 5, y + 5, w / 2, h / 2))
    assert chosen.used == 1 and chosen.aligned.face == faces[1]
    with pytest.raises(NoFaceFound, match=r"inside the box \[0.0, 0.0, 5.0, 5.0\] .* 'image'"):
        photo.read_photo(data, "image", 32, ZOOM, face=(0.0, 0.0, 5.0, 5.0))


def test_a_truncated_photo_is_400_and_a_non_image_refused(astronaut):
    data = uploads.encode(astronaut, "JPEG")
    with pytest.raises(UnreadableImage) as caught:
        photo.read_photo(data[: len(data) // 2], "image", 32, ZOOM)
    assert caught.value.http_status == 400
    with pytest.raises(UnreadableImage):
        photo.read_photo(b"%!PS-Adobe-3.0 EPSF", "image", 32, ZOOM)
    with pytest.raises(InvalidPayload, match="base64"):
        photo.photo_bytes("not base64!", "image")  # a photo sent inline
    assert photo.photo_bytes(b64(data), "image") == data


def test_a_jpeg_upload_is_answered_as_jpeg_and_others_as_png(astronaut):
    jpeg, media = photo.encode(astronaut, jpeg=True)
    assert media == "image/jpeg" and base64.b64decode(jpeg).startswith(b"\xff\xd8")
    png, media = photo.encode(astronaut, jpeg=False)
    assert media == "image/png"
    assert np.array_equal(uploads.decode(base64.b64decode(png)), astronaut)  # lossless


def test_a_strip_over_its_pixel_cap_is_made_smaller_frame_by_frame():
    frame = np.zeros((100, 200, 3), np.uint8)
    assert photo.strip([frame] * 3, 3).shape == (100, 600, 3)
    small = photo.strip([frame] * 4, 4, max_pixels=20_000)  # 80,000 pixels asked for
    assert small.shape == (50, 400, 3)
