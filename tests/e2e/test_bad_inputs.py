"""Bad input through the real stack: each gets its status and JSON detail, nothing breaks."""

from __future__ import annotations

import pytest

from tests.utils import images
from tests.utils.forms import chunks


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (images.EPS, 415),
        (images.tiff(), 415),
        (images.psd(), 415),
        (images.png_header_only(20000, 20000), 413),
        (images.truncated_png(), 400),
        (images.png_text_bomb(), 400),  # one zTXt chunk inflating to 100 MB
        (b"\x89PNG\r\n\x1a\n" + b"\0" * (200 * 1024), 413),  # over the 128 KiB file limit
    ],
    ids=[
        "eps-named-png",
        "tiff-named-png",
        "psd-named-png",
        "pixel-bomb",
        "truncated",
        "text-chunk-bomb",
        "oversized-file",
    ],
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
    answer = api.post("/sample", content=chunks(body), headers=headers)
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
