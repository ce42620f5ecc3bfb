"""Large photos sent many at once, and a process's resident memory watched meanwhile: the
memory-budget resilience test and `bench/large_uploads.py` share these.

    a, b = photo_jpeg(seed=0), photo_jpeg(seed=1)
    with RssSampler(api.process.pid) as rss:
        answers = burst(f"{api.url}/transfer", {"image": a, "attributes": b}, n=64)
    rss.peak_mib
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import numpy as np
from PIL import Image

MiB = 1024 * 1024


def photo_jpeg(seed: int = 0, size: tuple[int, int] = (4000, 3000), quality: int = 96) -> bytes:
    """A phone-sized JPEG (12 megapixels by default) that compresses like a photo, not like a
    flat test card: colour waves under grain. About 8 MiB at the defaults, like a phone photo."""
    return jpeg(photo_pixels(seed, size), quality)


def photo_pixels(seed: int = 0, size: tuple[int, int] = (4000, 3000)) -> np.ndarray:
    """(H, W, 3) uint8 of `photo_jpeg`."""
    width, height = size
    rng = np.random.default_rng(seed)
    x, y = np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    phase = rng.uniform(0, 2 * np.pi, (3, 2))
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    for c in range(3):
        wave_x = 60 * np.sin(x / (200 + 60 * c) + phase[c, 0])
        wave_y = 50 * np.sin(y / (300 + 40 * c) + phase[c, 1])
        grain = rng.integers(-28, 29, (height, width), dtype=np.int16)
        channel = (128 + wave_y[:, None] + wave_x[None, :]).astype(np.int16) + grain
        pixels[..., c] = np.clip(channel, 0, 255)
    return pixels


def jpeg(pixels: np.ndarray, quality: int = 96) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory (VmRSS) or its peak so far (VmHWM), from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


class RssSampler:
    """A process's peak resident memory between enter and exit: VmRSS sampled every
    `interval_s` on a thread, and VmHWM (the peak since the process started) at exit."""

    def __init__(self, pid: int, interval_s: float = 0.01) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, rss_mib(self.pid))
            time.sleep(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.peak_mib = rss_mib(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, rss_mib(self.pid, "VmHWM"))  # between samples too


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (the connection failed)
    retry_after: str | None
    seconds: float
    error: str = ""


def post(url: str, files: dict[str, bytes], timeout: float = 300.0) -> Answer:
    start = time.perf_counter()
    parts = {name: (f"{name}.jpg", data, "image/jpeg") for name, data in files.items()}
    try:
        with httpx.Client(timeout=timeout) as client:
            r = client.post(url, files=parts)  # the API's default model
        return Answer(r.status_code, r.headers.get("retry-after"), time.perf_counter() - start)
    except httpx.HTTPError as exc:
        return Answer(0, None, time.perf_counter() - start, repr(exc))


def burst(url: str, files: dict[str, bytes], n: int, timeout: float = 300.0) -> list[Answer]:
    """`n` POSTs of the same files, all at once (one thread and connection each)."""
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: post(url, files, timeout), range(n)))


def settle(pid: int, seconds: float = 1.0) -> float:
    """The process's RSS once it has stopped moving by more than 1 MiB over `seconds`."""
    last = rss_mib(pid)
    for _ in range(30):
        time.sleep(seconds)
        now = rss_mib(pid)
        if abs(now - last) < 1:
            return now
        last = now
    return last
