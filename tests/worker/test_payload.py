"""Payload decoding alone: raw pixels or PNG only, the model's size, clear messages."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

from contract.errors import InvalidPayload
from contract.tasks import RAW_RGB_PREFIX, SampleRequest
from model import images as imageio
from worker import payload


def b64(image: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def test_png_round_trip_is_lossless():
    a = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(payload.decode_png(payload.encode_png(a), 32), a)


def test_the_answers_pngs_are_what_pillow_reads_back():
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    for data, want in zip(payload.encode_batch(x), imageio.tensor_to_uint8(x), strict=True):
        with Image.open(io.BytesIO(base64.b64decode(data)), formats=["PNG"]) as im:
            assert im.mode == "RGB" and np.array_equal(np.asarray(im), want)
    wide = np.random.default_rng(1).integers(0, 256, (20, 50, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(base64.b64decode(payload.encode_png(wide)))) as im:
        assert im.size == (50, 20) and np.array_equal(np.asarray(im), wide)


def test_rgba_and_grey_pngs_become_rgb():
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 255))
    assert payload.decode_png(b64(rgba), 16).shape == (16, 16, 3)
    assert payload.decode_png(b64(Image.new("L", (16, 16), 7)), 16)[0, 0].tolist() == [7, 7, 7]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("@@@", "not valid base64"),
        (b64(Image.new("RGB", (16, 16)), "JPEG"), "not a PNG"),
        (b64(Image.new("RGB", (16, 16)), "GIF"), "not a PNG"),
        (b64(Image.new("RGB", (17, 16))), "17x16 image, the model takes 16x16"),
        (base64.b64encode(payload.PNG_SIGNATURE + b"\0" * 40).decode(), "undecodable"),
        ("A" * (payload.MAX_PNG_BYTES * 2), "larger than"),
    ],
    ids=["base64", "jpeg", "gif", "size", "garbage", "huge"],
)
def test_bad_images_are_refused_with_a_clear_message(data, message):
    with pytest.raises(InvalidPayload, match=message):
        payload.decode_png(data, 16, "image")


def test_a_large_image_is_refused_from_its_header_before_decoding(monkeypatch):
    big = b64(Image.new("L", (4000, 4000)))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels decoded"))
    with pytest.raises(InvalidPayload, match="4000x4000 image"):
        payload.decode_png(big, 32, "image")


def test_a_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow errors past twice this
    with pytest.raises(InvalidPayload, match="far larger"):
        payload.decode_png(b64(Image.new("L", (64, 64))), 32, "image")


def test_schema_errors_name_every_bad_field():
    with pytest.raises(InvalidPayload) as err:
        payload.parse(SampleRequest, (), {"model": "x", "image": "a", "n": 0, "temperature": -1})
    assert "n: Input should be greater" in str(err.value)
    assert "temperature: Input should be greater" in str(err.value)


def test_latents_must_be_finite_and_the_right_width():
    with pytest.raises(InvalidPayload, match="NaN or infinite"):
        payload.latents([[1e39, 0.0]], 2, "z")
    with pytest.raises(InvalidPayload, match="rows \\[1\\]"):
        payload.latents([[0.0, 0.0], [0.0]], 2, "z")


def test_a_png_larger_than_its_pixels_can_be_is_refused_before_decoding(monkeypatch):
    limit = payload.max_png_bytes(32)
    assert limit < 100 * 1024  # 32x32: 8 KiB of 16-bit RGBA pixels plus 64 KiB of chunks
    padded = base64.b64encode(payload.PNG_SIGNATURE + b"\0" * limit).decode()
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("opened"))
    with pytest.raises(InvalidPayload, match="more than a 32x32 PNG takes"):
        payload.decode_png(padded, 32, "image")


def test_an_uncompressed_16_bit_png_of_the_models_size_is_accepted():
    noise = np.random.default_rng(0).integers(0, 65536, (32, 32, 4), dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(noise[..., 0]).save(buf, format="PNG", compress_level=0)  # 16-bit grey
    assert payload.decode_png(base64.b64encode(buf.getvalue()).decode(), 32).shape == (32, 32, 3)


def test_a_png_text_chunk_bomb_is_refused_holding_little_memory():
    import tracemalloc

    from tests.utils import images

    bomb = images.png_text_bomb(chunks=60, inflated=1024 * 1024 - 1024)  # ~60 KB
    data = base64.b64encode(bomb).decode()
    tracemalloc.start()
    try:
        with pytest.raises(InvalidPayload, match="undecodable"):
            payload.decode_png(data, 32, "image")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def raw(a: np.ndarray) -> str:
    return RAW_RGB_PREFIX + base64.b64encode(a.tobytes()).decode()


def test_raw_pixels_are_taken_as_they_are_and_pngs_still_decoded():
    a = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(payload.decode_image(raw(a), 32), a)
    assert np.array_equal(payload.decode_image(payload.encode_png(a), 32), a)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (raw(np.zeros((16, 16, 3), np.uint8)), "raw pixels must be 32x32x3 bytes"),
        (raw(np.zeros((32, 32, 4), np.uint8)), "raw pixels must be 32x32x3 bytes"),
        (RAW_RGB_PREFIX + "!" * 4096, "not valid base64"),
    ],
)
def test_raw_pixels_of_another_size_or_not_base64_are_refused(data, message):
    with pytest.raises(InvalidPayload, match=message):
        payload.decode_image(data, 32, "image")
