"""Ordered parallel map with a progress bar, shared by every source's build.

Each job carries everything its result depends on (inputs and per-item seed), so a build gives
the same arrays for any number of workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def ordered_map(
    fn: Callable[[T], R],
    jobs: Sequence[T],
    *,
    workers: int = 1,
    desc: str = "",
    progress: bool = True,
) -> Iterator[R]:
    """Yield fn(job) for every job, in order. `fn` must be a module-level function so it
    pickles; workers <= 1 runs in this process (tests, small builds)."""
    bar = tqdm(total=len(jobs), desc=desc, unit="img", disable=not progress, dynamic_ncols=True)
    try:
        if workers <= 1 or len(jobs) < 2:
            for job in jobs:
                yield fn(job)
                bar.update()
            return
        # Chunks large enough to amortise pickling, small enough to keep the bar moving.
        chunksize = max(1, min(256, len(jobs) // (workers * 8)))
        with ProcessPoolExecutor(workers) as pool:
            for result in pool.map(fn, jobs, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()
