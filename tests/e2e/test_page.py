"""The web page in headless Chromium (Debian's `chromium`, driven by Playwright), against an API
with the product's defaults (faces first) on the e2e stack's Redis and worker."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import httpx
import pytest

from service.core.config import Settings
from tests.utils import images, photo_uploads
from tests.utils.api_process import running_api

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
from playwright import sync_api  # noqa: E402  (pinned in the dev extra)

if not Path(CHROMIUM).exists():
    # CI installs chromium (.ci/run): there a missing browser is a failure, not a skip.
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (apt-get install chromium)", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

# Each image: its natural size and the spread of its channel values (0: one flat colour).
MEASURE = """els => els.map(img => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let lo = 255, hi = 0;
  for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) {
    lo = Math.min(lo, d[i + k]); hi = Math.max(hi, d[i + k]);
  }
  return [img.naturalWidth, img.naturalHeight, hi - lo];
})"""

# The largest difference of any channel between the pixels of two images (of one size).
DIFFERENCE = """([a, b]) => {
  const pixels = [document.querySelector(a), document.querySelector(b)].map(img => {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    return g.getImageData(0, 0, c.width, c.height).data;
  });
  let most = 0;
  for (let i = 0; i < pixels[0].length; i++) most = Math.max(most, Math.abs(pixels[0][i] - pixels[1][i]));
  return most;
}"""

# A file dropped on an element, as the browser hands it to the page (a DataTransfer).
DROP = """([selector, name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/png" }));
  const target = document.querySelector(selector);
  target.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
  target.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}"""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page_api(stack, tmp_path_factory):
    """An API with the product's defaults but the stack's models and the e2e limits."""
    root = tmp_path_factory.mktemp("page-api")
    with running_api(stack["redis"].url, root, model_dir=stack["models"], job_timeout_s=20,
                     max_upload_bytes=128 * 1024, max_request_bytes=512 * 1024) as api:  # fmt: skip
        yield api


def open_page(browser, api, width: int = 1100):
    """The page, once it has listed the models and the default one's examples; and the script
    errors it raises from then on."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(api.url + "/")
    page.wait_for_selector("#examples[data-state=ready] .example img")
    page.wait_for_function("[...document.images].every(i => i.complete)")
    return page, errors


def measure(page, selector: str) -> list[list[int]]:
    return page.eval_on_selector_all(selector, MEASURE)


def drop(page, selector: str, name: str, data: bytes) -> None:
    page.evaluate(DROP, [selector, name, base64.b64encode(data).decode()])


def test_page_opens_on_faces_with_its_held_out_examples(browser, page_api):
    page, errors = open_page(browser, page_api)
    assert page.input_value("#model") == Settings(_env_file=None).default_model == "faces"
    labels = page.eval_on_selector_all(".example span", "els => els.map(e => e.textContent)")
    assert "happiness" in labels and "eval_score" in page.inner_text("#examples-note")
    assert all(w == h == 32 and spread > 0 for w, h, spread in measure(page, ".example img"))

    page.click("#card-open")
    assert "Model card: faces" in page.inner_text("#card")
    assert "the model's own drawing" in page.inner_text("#card")  # these test models' default
    page.click("#card .close")

    page.select_option("#model", "digits")
    page.wait_for_function(
        "[...document.querySelectorAll('.example span')].some(e => e.textContent === '7')"
    )
    assert errors == []


def test_page_runs_every_edit_from_examples_alone(browser, page_api):
    page, errors = open_page(browser, page_api)
    page.click("#slot-image")
    page.click(".example >> nth=0")
    page.click("#slot-attributes")
    page.click(".example >> nth=2")
    page.wait_for_selector("#slot-image[data-filled=yes] img")
    page.wait_for_selector("#slot-attributes[data-filled=yes] img")
    assert page.inner_text("#slot-attributes .slot-label") != page.inner_text(
        "#slot-image .slot-label"
    )

    page.click("#transfer-run")
    page.wait_for_selector("#transfer-result[data-state=done] img.out")
    assert measure(page, "#transfer-result img.out")[0][:2] == [32, 32]
    assert measure(page, "#transfer-result img.out")[0][2] > 0
    assert page.locator("#transfer-result img.in").count() == 2  # the originals beside it

    # The strength slider runs the transfer again at its new value.
    page.eval_on_selector(
        "#strength", "s => { s.value = 0.5; s.dispatchEvent(new Event('change')); }"
    )
    page.wait_for_selector("#transfer-result[data-state=done] >> text=strength 0.50")

    # Rendered onto the input, a transfer at strength 0 is the image itself; the model's own
    # drawing is not (these test models draw by default).
    def difference_at_strength_0() -> int:
        page.eval_on_selector(
            "#strength", "s => { s.value = 0; s.dispatchEvent(new Event('change')); }"
        )
        page.wait_for_selector("#transfer-result[data-state=done] >> text=strength 0.00")
        return page.evaluate(DIFFERENCE, ["#transfer-result img.in", "#transfer-result img.out"])

    assert difference_at_strength_0() > 10
    page.select_option("#render", "input")
    assert difference_at_strength_0() == 0
    page.select_option("#render", "")

    page.fill("#seed", "42")
    page.click("#sample-run")
    page.wait_for_selector("#sample-result[data-state=done] .grid img")
    sizes = measure(page, "#sample-result .grid img")
    assert len(sizes) == 8 and all(w == h == 32 and spread > 0 for w, h, spread in sizes)
    assert "seed 42" in page.inner_text("#sample-result .seed")
    page.click("#sample-reseed")
    page.wait_for_function(
        "(() => { const s = document.querySelector('#sample-result[data-state=done] .seed');"
        " return s && !s.textContent.includes('seed 42'); })()"
    )

    page.click("#neutralize-run")
    page.wait_for_selector("#neutralize-result[data-state=done] img.out")
    assert measure(page, "#neutralize-result img.out")[0][:2] == [32, 32]

    page.fill("#steps", "5")
    page.click("#interpolate-run")
    page.wait_for_selector("#interpolate-result[data-state=done] .strip img")
    assert [s[:2] for s in measure(page, "#interpolate-result .strip img")] == [[32, 32]] * 5
    assert page.locator("#interpolate-result img.movie").count() == 1
    assert errors == []


def test_page_transfers_dropped_files(browser, page_api):
    page, errors = open_page(browser, page_api)
    photo = photo_uploads.encode(photo_uploads.one_face_scene().image, "JPEG", orientation=6)
    drop(page, "#slot-image", "face.jpg", photo)  # a phone photo: the face is found in it
    drop(page, "#slot-attributes", "style.png", images.palette_with_transparency())
    page.wait_for_selector("#slot-attributes[data-filled=yes] img")
    assert page.inner_text("#slot-image .slot-label") == "face.jpg"
    page.click("#transfer-run")
    page.wait_for_selector("#transfer-result[data-state=done] img.out")
    ((width, height, spread),) = measure(page, "#transfer-result img.out")
    assert (width, height) == (480, 360) and spread > 0  # the photo, upright, face edited
    assert errors == []


def test_page_shows_the_apis_message_for_a_bad_upload(browser, page_api):
    expected = httpx.post(
        page_api.url + "/sample", files={"image": ("fake.png", images.EPS)}, timeout=30
    )
    assert expected.status_code == 415
    page, errors = open_page(browser, page_api)
    drop(page, "#slot-image", "fake.png", images.EPS)
    page.click("#sample-run")
    page.wait_for_selector("#sample-result[data-state=error]")
    assert page.inner_text("#sample-result .error") == expected.json()["detail"]
    assert errors == []


def test_page_asks_for_a_picture_before_running(browser, page_api):
    page, errors = open_page(browser, page_api)
    page.click("#transfer-run")
    page.wait_for_selector("#transfer-result[data-state=error]")
    assert "Pick an image" in page.inner_text("#transfer-result")
    assert errors == []


def test_page_fits_a_phone_screen(browser, page_api):
    page, errors = open_page(browser, page_api, width=375)
    page.click(".example >> nth=0")
    page.wait_for_selector("#slot-image[data-filled=yes]")
    page.click(".example >> nth=1")  # the next empty slot is highlighted: the attributes'
    page.wait_for_selector("#slot-attributes[data-filled=yes]")
    page.click("#transfer-run")
    page.wait_for_selector("#transfer-result[data-state=done] img.out")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert errors == []
