"""Upload decoding and conversion (service.core.images), and its match with model/images.py."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from service.core import images as service_images
from tests.utils import images

LIMITS = service_images.Limits(max_pixels=1_000_000)


def prepared(data: bytes, resolution: int = 32) -> Image.Image:
    return Image.open(io.BytesIO(service_images.prepare(data, resolution, LIMITS)))


def test_exif_orientation_is_honoured():
    image = prepared(images.jpeg_rotated(6))  # 64x32 left red | right blue, rotated 90° cw
    top, bottom = image.getpixel((16, 2)), image.getpixel((16, 29))
    assert top[0] > 200 and top[2] < 50  # red now on top
    assert bottom[2] > 200 and bottom[0] < 50


def test_cmyk_becomes_rgb():
    image = prepared(images.cmyk_jpeg())
    assert image.mode == "RGB"
    r, g, b = image.getpixel((16, 16))
    assert r > 200 and g < 50 and b < 50


def test_palette_transparency_becomes_black():
    image = prepared(images.palette_with_transparency())
    assert image.getpixel((4, 16)) == (0, 0, 0)  # transparent white -> black
    assert image.getpixel((28, 16)) == (0, 255, 0)


def test_grey16_keeps_its_levels():
    levels = (0, 1000, 30000, 65535)
    image = prepared(images.grey16(levels))
    got = [image.getpixel((i * 8 + 4, 16))[0] for i in range(len(levels))]
    assert got == [round(level / 257) for level in levels]  # [0, 4, 117, 255], not [0, 255...]


def test_animated_gif_uses_its_first_frame():
    image = prepared(images.animated_gif())
    assert image.getpixel((16, 16)) == (255, 0, 0)


def test_no_metadata_survives():
    data = service_images.prepare(images.with_metadata(), 32, LIMITS)
    assert b"secret-marker" not in data
    image = Image.open(io.BytesIO(data))
    assert not image.info.get("exif") and "Comment" not in image.info


def test_output_is_square_at_the_resolution_centre_cropped():
    image = prepared(images.encode(images.halves((96, 32), (255, 0, 0), (0, 0, 255))), 16)
    assert image.size == (16, 16)
    assert image.getpixel((1, 8))[0] > 200 and image.getpixel((14, 8))[2] > 200


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "GIF", "PNG"])
def test_every_allowed_format_decodes(fmt):
    assert prepared(images.encode(Image.new("RGB", (20, 20), (0, 0, 200)), fmt)).size == (32, 32)


def test_psd_and_pdf_bytes_are_refused_as_unsupported():
    for data in (b"8BPS" + b"\0" * 40, b"%PDF-1.4\n"):
        with pytest.raises(service_images.ImageRejected) as caught:
            service_images.prepare(data, 32, LIMITS)
        assert caught.value.status == 415


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("RGB", (50, 30), (10, 200, 30)),
        lambda: images.halves((70, 40), (255, 0, 0, 128), (0, 0, 255, 0), "RGBA"),
        lambda: images.halves((40, 70), 30, 220, "L"),
        lambda: Image.open(io.BytesIO(images.grey16())),
        lambda: Image.open(io.BytesIO(images.palette_with_transparency())),
        lambda: Image.effect_noise((90, 60), 60).convert("RGB"),
    ],
    ids=["rgb", "rgba", "grey", "grey16", "palette", "noise"],
)
def test_matches_model_preprocessing(make):
    """The service resizes uploads before queuing; the worker's own rules must give the same
    pixels, or a model would see different inputs through the API than in training."""
    model_images = pytest.importorskip("model.images")
    image = make()
    ours = service_images.fit(image, 32)
    theirs = model_images.fit(image, 32)
    assert ours.tobytes() == theirs.tobytes()


def test_png_text_chunk_bomb_is_refused_holding_little_memory():
    """80 zTXt chunks of just under 1 MiB each: Pillow alone would inflate 64 MiB of them."""
    import tracemalloc

    bomb = images.png_text_bomb(chunks=80, inflated=1024 * 1024 - 1024)  # ~85 KB
    tracemalloc.start()
    try:
        with pytest.raises(service_images.ImageRejected) as caught:
            service_images.prepare(bomb, 32, LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status == 400
    assert peak < 8 * 1024 * 1024


# --- large pictures: decoded at the size the model needs ---------------------------------------

BIG = service_images.Limits(max_pixels=25_000_000)


def photo(size=(2000, 1500)) -> Image.Image:
    """Smooth colours with some grain, like a photo."""
    noise = Image.effect_noise(size, 40).convert("RGB")
    return Image.blend(Image.radial_gradient("L").convert("RGB").resize(size), noise, 0.3)


def full_size_fit(data: bytes, resolution: int) -> Image.Image:
    """The conversion without draft or reduce: every pixel decoded."""
    return service_images.fit(service_images.decode(data, BIG), resolution)


def level_difference(a: Image.Image, b: Image.Image) -> tuple[float, int]:
    diff = [abs(x - y) for x, y in zip(a.tobytes(), b.tobytes(), strict=True)]
    return sum(diff) / len(diff), max(diff)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_pictures_are_decoded_small_and_converted_alike(fmt):
    data = images.encode(photo(), fmt)
    decoded = service_images.decode(data, BIG, resolution=32)
    assert min(decoded.size) >= service_images.REDUCING_GAP * 32
    assert decoded.size[0] <= 2000 // 4  # JPEG draft 1/4, PNG reduce 1/15
    mean, worst = level_difference(prepared_big(data), full_size_fit(data, 32))
    assert mean < 1.0 and worst <= 4  # measured: mean 0.2 to 0.6, worst 2


def prepared_big(data: bytes, resolution: int = 32) -> Image.Image:
    return Image.open(io.BytesIO(service_images.prepare(data, resolution, BIG)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: images.halves((1200, 900), (255, 0, 0, 128), (0, 0, 255, 0), "RGBA"),
        lambda: photo().convert("P", palette=Image.Palette.ADAPTIVE),
        lambda: Image.open(io.BytesIO(images.grey16())).resize((900, 700)),
        lambda: photo().convert("CMYK"),
    ],
    ids=["rgba", "palette", "grey16", "cmyk"],
)
def test_large_pictures_of_every_mode_convert_alike(make):
    data = images.encode(make(), "JPEG" if make().mode == "CMYK" else "PNG")
    mean, worst = level_difference(prepared_big(data), full_size_fit(data, 32))
    # worst: at the RGBA halves' hard edge, a box pre-filter and LANCZOS ring differently
    assert mean < 1.0 and worst <= 16


def test_large_rotated_jpeg_keeps_its_orientation():
    big = images.halves((1600, 800), (255, 0, 0), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise: left (red) goes to the top
    data = images.encode(big, "JPEG", exif=exif)
    out = prepared_big(data, 32)
    assert out.getpixel((16, 2))[0] > 200 and out.getpixel((16, 29))[2] > 200


def test_small_pictures_are_converted_exactly_as_before():
    """Below REDUCING_GAP times the resolution nothing is drafted or reduced."""
    for fmt in ("JPEG", "PNG"):
        data = images.encode(photo((150, 95)), fmt)
        assert prepared(data).tobytes() == full_size_fit(data, 32).tobytes()


def test_decode_cost_reads_the_header_only():
    jpeg = images.encode(Image.new("RGB", (4000, 3000), (90, 120, 30)), "JPEG")
    assert service_images.decode_cost(jpeg, 32, BIG) == 500 * 375 * 5  # decoded at 1/8
    assert service_images.decode_cost(jpeg, 512, BIG) == 4000 * 3000 * 5  # needs it all
    rgba = images.encode(Image.new("RGBA", (3000, 2000)), "PNG")
    assert service_images.decode_cost(rgba, 32, BIG) == 3000 * 2000 * 9
    assert service_images.decode_cost(b"not an image", 32, BIG) == 0
    assert service_images.decode_cost(jpeg, 32, service_images.Limits(max_pixels=1000)) == 0


@pytest.mark.parametrize("make", [images.jpeg_rotated, images.cmyk_jpeg, images.png])
def test_the_raw_pixels_queued_are_those_of_the_clean_png(make):
    data = make(6) if make is images.jpeg_rotated else make()
    pixels = service_images.prepare_pixels(data, 32, LIMITS)
    assert pixels == prepared(data).convert("RGB").tobytes()
