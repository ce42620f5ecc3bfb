"""The API's memory budget for image work: upload bodies held in memory and their decoding.

A request reserves what it will hold before it holds it: its body (read into memory, see
`service/core/uploads.py`) before a byte is read, and the decoding of its largest image (from
the header, see `service.core.images.decode_cost`) before a pixel is decompressed. A reservation
that does not fit waits, first come first served, for at most `wait_s`; then the request is
answered 503 with Retry-After, before the memory is taken. So a burst of large uploads queues
and is refused politely instead of growing the process without bound.

Memory freed after a burst is given back to the system: glibc would otherwise keep it (its
mmap threshold rises to the largest block freed, so later image buffers come from heaps it
seldom trims, and every decoding thread may get its own arena). `tune_allocator` fixes the
threshold and caps the arenas; the budget trims the heap once it falls idle.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections import deque
from dataclasses import dataclass

from service.core.errors import Unavailable

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024  # buffers from here up (upload bytes, image blocks) are mmapped
ARENA_MAX = 2  # decoding threads share two arenas instead of up to 8 per core
TRIM_DELAY_S = 0.5  # an idle budget trims the heap this long after its last release

_libc: ctypes.CDLL | None = None


def tune_allocator() -> bool:
    """Sets glibc's malloc so that freed image memory goes back to the system; False where the
    C library is not glibc (nothing changes then)."""
    global _libc
    if _libc is not None:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both must exist (glibc)
    except (OSError, AttributeError):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = all(
        mallopt(param, value)
        for param, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD),
            (_M_ARENA_MAX, ARENA_MAX),
        )
    )
    if not ok:
        log.warning("mallopt refused a setting; freed memory may stay with the process")
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    _libc = libc
    return True


def trim() -> None:
    """Returns the free memory at the top of every heap (and arena) to the system."""
    if _libc is not None:
        _libc.malloc_trim(0)


@dataclass
class _Waiter:
    nbytes: int
    future: asyncio.Future[None]


class MemoryBudget:
    """A counting semaphore in bytes, for one event loop."""

    def __init__(self, capacity: int, wait_s: float, retry_after_s: int) -> None:
        self.capacity = capacity
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self.used = 0
        self._waiters: deque[_Waiter] = deque()
        self._trim: asyncio.TimerHandle | None = None
        tune_allocator()

    def reservation(self) -> Reservation:
        return Reservation(self)

    async def take(self, nbytes: int, what: str, *, first: bool = False) -> None:
        """Waits until `nbytes` fit, at most `wait_s`; Unavailable (503) after that. `first`
        puts the request ahead of those waiting (it already holds memory it will free)."""
        nbytes = min(nbytes, self.capacity)  # one larger than the budget runs alone
        if not self._waiters and self.used + nbytes <= self.capacity:
            self.used += nbytes
            return
        waiter = _Waiter(nbytes, asyncio.get_running_loop().create_future())
        if first:
            self._waiters.appendleft(waiter)
            self._wake()  # it may fit now, ahead of those that did not
        else:
            self._waiters.append(waiter)
        granted = False
        try:
            await asyncio.wait({waiter.future}, timeout=self.wait_s)
            granted = waiter.future.done() and not waiter.future.cancelled()
        finally:
            if not granted:
                waiter.future.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    self._wake()  # the next one may fit now
        if not granted:
            log.warning(
                "memory budget: %s (%.0f MiB) did not fit within %.0f s (%.0f of %.0f MiB used)",
                what, nbytes / MiB, self.wait_s, self.used / MiB, self.capacity / MiB,
            )  # fmt: skip
            raise Unavailable(
                "the service is busy with other large images; try again shortly",
                self.retry_after_s,
            )

    def give(self, nbytes: int) -> None:
        self.used -= nbytes
        self._wake()
        if self.used == 0 and self._trim is None:
            self._trim = asyncio.get_running_loop().call_later(TRIM_DELAY_S, self._trim_if_idle)

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0].nbytes <= self.capacity:
            waiter = self._waiters.popleft()
            if waiter.future.done():  # cancelled meanwhile
                continue
            self.used += waiter.nbytes
            waiter.future.set_result(None)

    def _trim_if_idle(self) -> None:
        self._trim = None
        if self.used == 0:
            trim()


class Reservation:
    """What one request holds of the budget; grows as the request learns what it needs, and is
    released once (again is harmless)."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.nbytes = 0

    async def grow_to(self, nbytes: int, what: str) -> None:
        nbytes = min(nbytes, self.budget.capacity)
        if nbytes <= self.nbytes:
            return
        await self.budget.take(nbytes - self.nbytes, what, first=self.nbytes > 0)
        self.nbytes = nbytes

    def release(self) -> None:
        if self.nbytes:
            held, self.nbytes = self.nbytes, 0
            self.budget.give(held)
