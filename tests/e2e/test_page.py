"""The web page in headless Chromium (Debian's `chromium`, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.utils import images

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
from playwright import sync_api  # noqa: E402  (pinned in the dev extra)

if not Path(CHROMIUM).exists():
    # CI installs chromium (.ci/run): there a missing browser is a failure, not a skip.
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (apt-get install chromium)", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


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


def open_page(browser, stack):
    """The page, once it has listed the models; and the script errors it raises from then on."""
    page = browser.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(stack["api"].url + "/")
    page.wait_for_selector("#model option[value='digits']", state="attached")
    return page, errors


def test_page_transfers_and_samples(browser, stack, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "face.jpg").write_bytes(images.jpeg_rotated())
    (inputs / "style.png").write_bytes(images.palette_with_transparency())
    page, errors = open_page(browser, stack)

    page.set_input_files("#transfer-form input[name=image]", inputs / "face.jpg")
    page.set_input_files("#transfer-form input[name=attributes]", inputs / "style.png")
    page.click("#transfer-form button")
    page.wait_for_selector("#transfer-result[data-state=done] img")

    page.set_input_files("#sample-form input[name=image]", inputs / "face.jpg")
    page.fill("#sample-form input[name=n]", "6")
    page.fill("#sample-form input[name=seed]", "42")
    page.click("#sample-form button")
    page.wait_for_selector("#sample-result[data-state=done] img")

    assert page.locator("#transfer-result img").count() == 1
    assert page.locator("#sample-result img").count() == 6
    assert "seed 42" in page.inner_text("#sample-result .meta")
    assert all(
        page.eval_on_selector_all(
            "#sample-result img", "els => els.map(e => e.complete && e.naturalWidth === 32)"
        )
    )
    shot = Path(os.environ.get("SRBVAE_SCREENSHOT_DIR", tmp_path)) / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert errors == []


def test_page_neutralises_and_interpolates(browser, stack, tmp_path):
    face, style = tmp_path / "face.png", tmp_path / "style.png"
    face.write_bytes(images.png((48, 40), (30, 140, 220)))
    style.write_bytes(images.palette_with_transparency())
    page, errors = open_page(browser, stack)

    page.set_input_files("#neutralize-form input[name=image]", face)
    page.click("#neutralize-form button")
    page.wait_for_selector("#neutralize-result[data-state=done] img")

    page.set_input_files("#interpolate-form input[name=a]", face)
    page.set_input_files("#interpolate-form input[name=b]", style)
    page.fill("#interpolate-form input[name=steps]", "4")
    page.click("#interpolate-form button")
    page.wait_for_selector("#interpolate-result[data-state=done] img")

    assert page.locator("#neutralize-result img").count() == 1
    assert page.locator("#interpolate-result img").count() == 4
    assert errors == []


def test_page_shows_a_bad_upload_as_an_error(browser, stack, tmp_path):
    bad = tmp_path / "fake.png"
    bad.write_bytes(images.EPS)
    page = browser.new_page()
    page.set_default_timeout(15_000)
    page.goto(stack["api"].url + "/")
    page.set_input_files("#sample-form input[name=image]", bad)
    page.click("#sample-form button")
    page.wait_for_selector("#sample-result[data-state=error]")
    assert "415" in page.inner_text("#sample-result")
