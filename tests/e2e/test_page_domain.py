"""The domain check against a stack serving the real `faces` model (models/faces, with its
stored domain reference): the page's warning in headless Chromium, and the answers' headers
and field. Its held-out examples pass without a word; a real photo is out of domain."""

from __future__ import annotations

import shutil

import httpx
import pytest

from tests.e2e.conftest import REPO
from tests.e2e.test_page import browser, drop, open_page  # noqa: F401  (browser: a fixture)
from tests.utils import photo_uploads
from tests.utils.api_process import running_api
from tests.utils.redis_server import running_redis
from tests.utils.worker_process import running_worker

WARNING = (
    "This image looks unlike the images the model was trained on (synthetic faces): "
    "results may be poor."
)


@pytest.fixture(scope="module")
def faces_api(tmp_path_factory):
    root = tmp_path_factory.mktemp("domain-stack")
    shutil.copytree(REPO / "models" / "faces", root / "models" / "faces")
    with (
        running_redis(root) as redis,
        running_worker(redis.url, root / "models", root),
        running_api(redis.url, root, model_dir=root / "models", job_timeout_s=60) as api,
    ):
        yield api


def test_page_warns_about_a_real_photo_and_not_about_held_out_faces(browser, faces_api):  # noqa: F811
    page, errors = open_page(browser, faces_api)
    page.click("#slot-image")
    page.click(".example >> nth=0")
    page.click("#slot-attributes")
    page.click(".example >> nth=2")
    page.wait_for_selector("#slot-attributes[data-filled=yes] img")
    page.click("#transfer-run")
    page.wait_for_selector("#transfer-result[data-state=done] img.out")
    assert page.locator("#transfer-result .warning").count() == 0

    photo = photo_uploads.encode(photo_uploads.astronaut_photo(), "JPEG")
    drop(page, "#slot-image", "astronaut.jpg", photo)
    page.wait_for_selector("#slot-image[data-filled=yes] img[alt='astronaut.jpg']")
    page.click("#neutralize-run")
    page.wait_for_selector("#neutralize-result[data-state=done]")
    warning = page.locator("#neutralize-result .warning")
    assert warning.count() == 1 and warning.inner_text() == WARNING
    assert warning.is_visible()

    page.click("#transfer-run")  # the photo as image, a held-out face as attributes
    page.wait_for_selector("#transfer-result[data-state=done]")
    assert page.locator("#transfer-result .warning").all_inner_texts() == [WARNING]
    assert errors == []


def test_the_answers_headers_and_field_through_the_stack(faces_api):
    example = (REPO / "models" / "faces" / "examples" / "happiness.png").read_bytes()
    photo = photo_uploads.encode(photo_uploads.astronaut_photo(), "JPEG")
    with httpx.Client(base_url=faces_api.url, timeout=60) as client:
        plain = client.post("/neutralize", files={"image": ("happiness.png", example)})
        assert plain.status_code == 200 and plain.headers["x-out-of-domain"] == "false"
        assert float(plain.headers["x-domain-percentile"]) < 99
        files = {"image": ("astronaut.jpg", photo), "attributes": ("happiness.png", example)}
        answer = client.post("/transfer", files=files, headers={"Accept": "application/json"})
    assert answer.status_code == 200
    assert answer.headers["x-domain-percentile"].startswith("100, ")
    assert answer.headers["x-out-of-domain"] == "true, false"
    domain = answer.json()["domain"]
    assert domain["inputs"] == ["image", "attributes"] and domain["trained_on"] == "synthetic faces"
    assert domain["out_of_domain"] == [True, False]
