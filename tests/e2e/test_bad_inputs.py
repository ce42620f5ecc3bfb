"""Bad input through the real stack: each gets its status and JSON detail, nothing breaks."""

from __future__ import annotations

import pytest

from tests.utils import images


def chunked(body: bytes, size: int = 16 * 1024):
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (images.EPS, 415),
        (images.tiff(), 415),
        (images.png_header_only(20000, 20000), 413),
        (images.truncated_png(), 400),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (200 * 1024), 413),  # over the 128 KiB file limit
    ],
    ids=["eps-named-png", "tiff-named-png", "pixel-bomb", "truncated", "oversized-file"],
)
def test_bad_upload_gets_its_status(api, data, status):
    answer = api.post("/sample", files={"image": ("innocent.png", data, "image/png")})
    assert answer.status_code == status
    assert isinstance(answer.json()["detail"], str)


def test_oversized_body_with_content_length_is_413(api):
    body = b"x" * (600 * 1024)
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    answer = api.post("/sample", content=body, headers=headers)
    assert answer.status_code == 413 and "detail" in answer.json()


def test_oversized_body_without_content_length_is_413(api):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (600 * 1024)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        + big
        + b"\r\n--b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    answer = api.post("/sample", content=chunked(body), headers=headers)
    assert answer.status_code == 413


def test_out_of_range_and_unknown_model(api):
    files = {"image": ("a.png", images.png())}
    assert api.post("/sample", files=files, data={"n": "65"}).status_code == 422
    answer = api.post("/sample", files=files, data={"model": "cats"})
    assert answer.status_code == 404 and "digits" in answer.json()["detail"]


def test_good_requests_still_succeed_afterwards(api):
    files = {"image": ("a.png", images.png())}
    assert api.post("/sample", files=files, data={"n": "2"}).status_code == 200
    assert api.get("/readyz").status_code == 200
