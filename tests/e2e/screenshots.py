"""Screenshots of the web page for the docs, with the served models in `models/`:

    python -m tests.e2e.screenshots            # docs/images/page-desktop.png, page-phone.png

Starts redis-server, a worker holding `models/` and the API with its defaults (as the e2e
tests do), opens the page in headless Chromium at a desktop and a phone width, picks two
examples, and runs a transfer, a sample and an interpolation before each shot.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright import sync_api

from tests.e2e.test_page import CHROMIUM, open_page
from tests.utils.api_process import running_api
from tests.utils.redis_server import running_redis
from tests.utils.worker_process import running_worker

REPO = Path(__file__).resolve().parents[2]
WIDTHS = {"desktop": 1200, "phone": 390}


def shoot(browser, api, width: int, out: Path) -> None:
    page, errors = open_page(browser, api, width=width)
    page.click(".example >> nth=7" if page.locator(".example").count() > 7 else ".example >> nth=5")
    page.wait_for_selector("#slot-image[data-filled=yes]")
    page.click(".example >> nth=0")
    page.wait_for_selector("#slot-attributes[data-filled=yes]")
    for kind in ("transfer", "sample", "neutralize", "interpolate"):
        page.click(f"#{kind}-run")
        page.wait_for_selector(f"#{kind}-result[data-state=done] img.out")
    if (scroll := page.evaluate("document.documentElement.scrollWidth")) > width:
        raise RuntimeError(f"the page is {scroll} px wide in a {width} px window")
    page.screenshot(path=str(out), full_page=True)
    page.close()
    if errors:
        raise RuntimeError(f"the page raised {errors}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.screenshots", description=__doc__)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_redis(Path(tmp)) as redis,
        running_worker(redis.url, args.models, tmp),
        running_api(redis.url, tmp, model_dir=args.models.resolve()) as api,
        sync_api.sync_playwright() as p,
    ):
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        for name, width in WIDTHS.items():
            out = args.out / f"page-{name}.png"
            shoot(browser, api, width, out)
            print(f"{out} ({width} px wide)")
        browser.close()


if __name__ == "__main__":
    main()
