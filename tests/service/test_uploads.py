"""Size limits hold while the body streams in, with or without Content-Length."""

from __future__ import annotations

from tests.service.conftest import small_settings
from tests.utils import images
from tests.utils.forms import BOUNDARY, HEADERS, chunks, multipart


def test_file_over_the_limit_is_413(client, jobs, png):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (300 * 1024)  # over 256 KiB, under the body limit
    body = multipart([("image", "a.png", big), ("attributes", "b.png", png)])
    answer = client.post("/transfer", content=body, headers=HEADERS)
    assert answer.status_code == 413 and "'image'" in answer.json()["detail"]
    assert jobs.sent == []


def test_file_over_the_limit_without_content_length_is_413(client, png):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (300 * 1024)
    body = multipart([("image", "a.png", big), ("attributes", "b.png", png)])
    answer = client.post("/transfer", content=chunks(body), headers=HEADERS)
    assert answer.status_code == 413


def test_body_over_the_limit_with_content_length_is_refused_before_reading(client):
    body = b"x" * (700 * 1024)
    answer = client.post("/transfer", content=body, headers=HEADERS)
    assert answer.status_code == 413
    assert answer.json() == {"detail": f"request body is over the limit of {600 * 1024} bytes"}


def test_body_over_the_limit_chunked_is_413(client, png):
    parts = [("image", "a.png", png)] + [(f"f{i}", None, b"1" * 4000) for i in range(200)]
    answer = client.post("/transfer", content=chunks(multipart(parts)), headers=HEADERS)
    assert answer.status_code == 413


def test_json_body_over_the_limit_is_413(client):
    answer = client.post("/generate", content=chunks(b"[" * (700 * 1024)), headers=JSON_TYPE)
    assert answer.status_code == 413


JSON_TYPE = {"Content-Type": "application/json"}


def test_field_over_its_limit_is_413(client, png):
    parts = [("image", "a.png", png), ("attributes", "b.png", png), ("model", None, b"d" * 5000)]
    answer = client.post("/transfer", content=multipart(parts), headers=HEADERS)
    assert answer.status_code == 413 and "'model'" in answer.json()["detail"]


def test_too_many_files_is_413(client, png):
    parts = [("images", f"{i}.png", png) for i in range(65)]
    answer = client.post("/encode", content=multipart(parts), headers=HEADERS)
    assert answer.status_code == 413 and "64 files" in answer.json()["detail"]


def test_too_many_fields_is_413(client, png):
    parts = [("image", "a.png", png)] + [(f"f{i}", None, b"1") for i in range(17)]
    answer = client.post("/sample", content=multipart(parts), headers=HEADERS)
    assert answer.status_code == 413


def test_malformed_multipart_is_400(client):
    body = f"--{BOUNDARY}\r\nno-colon-header\r\n\r\n".encode()
    answer = client.post("/sample", content=body, headers=HEADERS)
    assert answer.status_code == 400


def test_missing_boundary_is_400(client):
    headers = {"Content-Type": "multipart/form-data"}
    assert client.post("/sample", content=b"x", headers=headers).status_code == 400


def test_uploads_are_never_spooled_to_disk(client, jobs, monkeypatch, tmp_path):
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was written to a temporary file")

    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", refuse)
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr("starlette.formparsers.SpooledTemporaryFile", refuse)
    big = images.encode(images.halves((250, 250), (1, 2, 3), (200, 100, 0)), "BMP")  # ~190 KB
    answer = client.post("/sample", files={"image": ("a.bmp", big)})
    assert answer.status_code == 200


def test_settings_refuse_a_pixel_cap_at_pillows_limit():
    import pytest
    from PIL import Image
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        small_settings(max_pixels=Image.MAX_IMAGE_PIXELS)
