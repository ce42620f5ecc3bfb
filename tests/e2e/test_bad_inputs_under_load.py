"""Bad input fired among good requests, all at once, through the real stack (Redis, a worker,
uvicorn at the production upload limits): every bad request gets its 4xx with a JSON `detail`,
every good one succeeds (awkward but valid images converted as they should be), and the API
process's memory stays bounded while 50 MB uploads and decompression bombs are refused."""

from __future__ import annotations

import io
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageOps

from tests.utils import images
from tests.utils.api_process import running_api
from tests.utils.forms import HEADERS, chunks, multipart

MiB = 1024 * 1024
CONCURRENCY = 16
REPEATS = 2  # of every case, good and bad
PLAIN_GOOD = 40  # plain transfers and samples among them
# The API's peak resident memory may grow this much over its warmed-up peak while all of it
# runs: each request in flight holds at most one 10 MiB file, nothing in proportion to the
# 50 MB bodies or to what the bombs would inflate to. Measured: 21-34 MiB on a 2-core machine;
# Pillow's default allowance for PNG text (64 MiB an image) took two text bombs to 74-145.
RSS_GROWTH_LIMIT_MIB = 80


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    request: Callable[[], dict]  # httpx.request keyword arguments, built per send
    status: int
    check: Callable[[httpx.Response], None] | None = None  # for good cases, beyond the 200


def files(*parts: tuple[str, str, bytes]) -> Callable[[], dict]:
    return lambda: {"files": [(field, (name, data, "image/png")) for field, name, data in parts]}


def raw(body: bytes, chunked: bool = False) -> Callable[[], dict]:
    return lambda: {"content": chunks(body, 256 * 1024) if chunked else body, "headers": HEADERS}


def as_png(image: Image.Image) -> bytes:
    return images.encode(image, "PNG")


def bomb_side(times: float) -> int:
    """The side of a square just over `times` x Pillow's decompression-bomb limit."""
    return math.isqrt(int(times * Image.MAX_IMAGE_PIXELS)) + 1


# --- good requests whose conversion is checked ----------------------------------------------------


def same_latents_as(expected: bytes, wrong: bytes | None = None) -> tuple[Callable, Callable]:
    """/encode of [upload, expected, wrong]: the upload's z must equal the expected picture's
    (what the conversion should give) and differ from the wrong one (what a naive one gives)."""
    extra = [expected] + ([wrong] if wrong is not None else [])

    def request_for(upload: bytes) -> Callable[[], dict]:
        parts = [("images", "upload.png", upload)]
        parts += [("images", f"ref{i}.png", data) for i, data in enumerate(extra)]
        return files(*parts)

    def check(answer: httpx.Response) -> None:
        z = np.hstack([answer.json()["z"], answer.json()["e"]])
        assert np.abs(z[0] - z[1]).max() < 1e-6, "the upload was not converted as expected"
        if wrong is not None:
            assert np.abs(z[0] - z[2]).max() > 1e-5, "indistinguishable from the wrong conversion"

    return request_for, check


def conversion_cases() -> list[Case]:
    cases = []

    def add(name: str, upload: bytes, expected: bytes, wrong: bytes | None = None) -> None:
        request_for, check = same_latents_as(expected, wrong)
        cases.append(Case(name, "/encode", request_for(upload), 200, check))

    jpeg = images.jpeg_rotated(6)
    decoded = Image.open(io.BytesIO(jpeg))
    add("exif-rotated-jpeg", jpeg, as_png(ImageOps.exif_transpose(decoded)), as_png(decoded))

    cmyk = images.cmyk_jpeg()
    add("cmyk-jpeg", cmyk, as_png(Image.open(io.BytesIO(cmyk)).convert("RGB")))

    black_green = images.halves((32, 32), (0, 0, 0), (0, 255, 0))
    white_green = images.halves((32, 32), (255, 255, 255), (0, 255, 0))
    add("palette-transparency", images.palette_with_transparency(), as_png(black_green),
        as_png(white_green))  # fmt: skip

    levels = (0, 1000, 30000, 65535)

    def grey(values) -> bytes:
        image = Image.new("L", (len(levels) * 8, 32))
        image.putdata([values[x // 8] for _ in range(32) for x in range(len(levels) * 8)])
        return as_png(image)

    kept, clipped = [round(v / 257) for v in levels], [min(v, 255) for v in levels]
    add("grey16-levels", images.grey16(levels), grey(kept), grey(clipped))  # [0, 4, 117, 255]

    animation = images.long_animation(1000)
    frames = Image.open(io.BytesIO(animation))
    first = as_png(frames.convert("RGB"))
    frames.seek(999)
    add("animation-1000-frames", animation, first, as_png(frames.convert("RGB")))
    return cases


# --- all the cases --------------------------------------------------------------------------------


def all_cases() -> list[Case]:
    png = images.png((32, 32))
    other = images.png((32, 32), (30, 200, 30))
    fifty_mb = b"\x89PNG\r\n\x1a\n" + bytes(50 * MiB)
    fifty_mb_form = multipart([("image", "big.png", fifty_mb)])
    pixel_bomb_1x = images.png_header_only(bomb_side(1), bomb_side(1))
    pixel_bomb_2x = images.png_header_only(bomb_side(2), bomb_side(2))
    text_bomb_many = images.png_text_bomb(chunks=80, inflated=MiB - 1024)  # 80 MB in ~85 KB
    bad = [
        Case("50MB-with-content-length", "/sample", raw(fifty_mb_form), 413),
        Case("50MB-chunked", "/sample", raw(fifty_mb_form, chunked=True), 413),
        Case("too-many-files", "/encode",
             raw(multipart([("images", f"{i}.png", png) for i in range(65)])), 413),
        Case("too-many-fields", "/sample",
             raw(multipart([("image", "a.png", png)] + [(f"f{i}", None, b"1") for i in range(17)])),
             413),
        Case("pixel-bomb-1x-pillow-limit", "/sample", files(("image", "a.png", pixel_bomb_1x)), 413),
        Case("pixel-bomb-2x-pillow-limit", "/sample", files(("image", "a.png", pixel_bomb_2x)), 413),
        Case("eps-named-png", "/sample", files(("image", "a.png", images.EPS)), 415),
        Case("tiff-named-png", "/sample", files(("image", "a.png", images.tiff())), 415),
        Case("psd-named-png", "/sample", files(("image", "a.png", images.psd())), 415),
        Case("text-chunk-bomb-one-chunk", "/sample",
             files(("image", "a.png", images.png_text_bomb())), 400),
        Case("text-chunk-bomb-many-chunks", "/sample", files(("image", "a.png", text_bomb_many)),
             400),
    ]  # fmt: skip

    def transfer_with_names(image_name: bytes, attributes_name: bytes) -> Callable[[], dict]:
        return raw(multipart([("image", image_name, png), ("attributes", attributes_name, other)]))

    hostile_names = {
        "path-traversal": b"../../../../etc/passwd",
        "absolute-windows-path": b"C:\\Windows\\system32\\a.png",
        "nul-byte": b"a\x00.png",
        "invalid-utf8": b"\xff\xfe\xfd.png",
        "right-to-left-override": "\u202egnp.exe".encode(),
        "shell-and-html": b"$(reboot);<script>alert(1)</script>`id`.png",
        "three-thousand-chars": b"x" * 3000 + b".png",
        "empty": b"",
    }
    # python-multipart refuses a part header line over 4 KiB: one more bounded buffer.
    bad.append(Case("hostile-filename-ten-thousand-chars", "/transfer",
                    transfer_with_names(b"x" * 10_000 + b".png", b"b.png"), 400))  # fmt: skip
    good = [
        Case(f"hostile-filename-{name}", "/transfer", transfer_with_names(fn, fn), 200)
        for name, fn in hostile_names.items()
    ]
    good.append(
        Case("chunked-good-upload", "/transfer",
             raw(multipart([("image", "a.png", png), ("attributes", "b.png", other)]), chunked=True),
             200)
    )  # fmt: skip
    good += conversion_cases()
    plain = [
        Case("transfer", "/transfer", files(("image", "a.png", png), ("attributes", "b.png", other)),
             200),
        Case("sample", "/sample", lambda: {**files(("image", "a.png", png))(), "data": {"n": "2"}},
             200),
    ]  # fmt: skip
    return bad + good + plain


# --- the run --------------------------------------------------------------------------------------


def rss_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak since start) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@dataclass
class Run:
    results: list[tuple[Case, httpx.Response]]
    baseline_peak_kib: int
    peak_kib: int
    sampled_peak_kib: int
    seconds: float


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory) -> Run:
    """One API process at the default (production) limits on the session's Redis and worker;
    warmed up, then every case at once, REPEATS times each, shuffled, 16 in flight."""
    cases = all_cases()
    plain = [c for c in cases if c.name in ("transfer", "sample")]
    special = [c for c in cases if c not in plain]
    sends = special * REPEATS + [plain[i % 2] for i in range(PLAIN_GOOD)]
    random.Random(0).shuffle(sends)

    log_dir = tmp_path_factory.mktemp("api-under-load")
    with (
        running_api(stack["redis"].url, log_dir, job_timeout_s=60) as api,
        httpx.Client(base_url=api.url, timeout=120) as client,
    ):
        pid = api.process.pid

        def send(case: Case) -> tuple[Case, httpx.Response]:
            return case, client.post(case.path, **case.request())

        with ThreadPoolExecutor(CONCURRENCY) as pool:  # warm-up: every good case once
            for case, answer in pool.map(send, [c for c in cases if c.status == 200]):
                assert answer.status_code == 200, (case.name, answer.text)
        baseline = rss_kib(pid, "VmHWM")

        sampled, stop = [0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                sampled[0] = max(sampled[0], rss_kib(pid, "VmRSS"))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(send, sends))
        seconds = time.monotonic() - t0
        stop.set()
        sampler.join()
        peak = rss_kib(pid, "VmHWM")
        assert client.get("/readyz").status_code == 200
        assert "Traceback" not in api.log(), api.log()[-3000:]
    print(
        f"\nAPI RSS: warmed-up peak {baseline / 1024:.0f} MiB, peak under bad load "
        f"{peak / 1024:.0f} MiB (sampled VmRSS max {sampled[0] / 1024:.0f} MiB); "
        f"{len(sends)} requests in {seconds:.1f} s"
    )
    return Run(results, baseline, peak, sampled[0], seconds)


def test_every_bad_request_gets_its_4xx_with_a_detail(run):
    wrong = []
    for case, answer in run.results:
        if case.status == 200:
            continue
        is_json = answer.headers.get("content-type", "").startswith("application/json")
        detail = answer.json().get("detail") if is_json else None
        if answer.status_code != case.status or not isinstance(detail, str):
            wrong.append((case.name, answer.status_code, answer.text[:200]))
    assert not wrong


def test_every_good_request_succeeds(run):
    failed = [
        (case.name, answer.status_code, answer.text[:200])
        for case, answer in run.results
        if case.status == 200 and answer.status_code != 200
    ]
    assert not failed
    assert sum(case.status == 200 for case, _ in run.results) >= PLAIN_GOOD


def test_awkward_images_are_converted_correctly_under_load(run):
    checked = 0
    for case, answer in run.results:
        if case.check is not None and answer.status_code == 200:
            case.check(answer)
            checked += 1
    assert checked == len(conversion_cases()) * REPEATS


def test_api_memory_stays_bounded(run):
    growth_mib = (run.peak_kib - run.baseline_peak_kib) / 1024
    assert growth_mib < RSS_GROWTH_LIMIT_MIB, (
        f"the API's peak RSS grew {growth_mib:.0f} MiB under the bad load"
    )
