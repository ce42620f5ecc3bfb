"""Micro-batching: one device thread runs every forward pass, merging requests that arrive
together into one batch.

Task threads submit operations (encode x, generate z and e) and wait on a future. The device
thread takes the oldest pending operation, gathers the others with the same key (model and
kind) up to `max_rows` rows, and runs them as one forward pass. It waits at most `wait_s` for
company, and not at all when no other job is in flight, so a lone request pays nothing.

The device thread is named `srbvae-device` for the operating system, and so are the intra-op
threads torch starts from it: `/proc/<pid>/task/*/comm` tells the forward passes' CPU time
from the rest of the process (bench/request_cost.py reads it). `pass_counts()` says how many
rows the passes had. Passes of at most `small_rows` rows (a lone request's) run on
`small_threads` intra-op threads, larger ones on torch's setting (docs/performance.md); with
`side_thread`, such a pass of an operation submitted with `side=True` also gets a second
device thread to run part of its work beside it (q(e|x) beside q(z|x), half the rows of
G).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import cast

import torch

from worker import trace

log = logging.getLogger(__name__)

THREAD_NAME = b"srbvae-device"  # at most 15 bytes: the kernel's limit
PR_SET_NAME = 15

# fn(list of per-op tensor tuples, concatenated along dim 0) -> tuple of batched outputs
BatchFn = Callable[..., tuple[torch.Tensor, ...]]


@dataclass
class _Op:
    key: Hashable
    fn: BatchFn | Callable[[], object]
    tensors: tuple[torch.Tensor, ...]  # each (rows, ...); empty for a plain call
    rows: int
    job_id: str | None
    side: bool = False  # fn takes side=<executor> in a small pass (Batcher.submit)
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(
        self,
        max_rows: int,
        wait_s: float,
        name: str = "device",
        *,
        small_rows: int = 0,
        small_threads: int | None = None,
        side_thread: bool = False,
    ):
        """Passes of at most `small_rows` rows run on `small_threads` intra-op threads (None:
        as many as the others, torch's setting when the thread starts); with `side_thread`
        those of operations submitted with side=True also get a second device thread."""
        self.max_rows = max_rows
        self.wait_s = wait_s
        self.small_rows = small_rows
        self.small_threads = small_threads
        self._side = (
            ThreadPoolExecutor(1, f"{name}-side", initializer=_side_thread_start)
            if side_thread and small_rows > 0
            else None
        )
        self._threads: int | None = None  # torch's intra-op threads as last set here
        self._large_threads: int | None = None
        self._pending: list[_Op] = []
        self._cond = threading.Condition()
        self._jobs_active = 0  # jobs registered with job() ...
        self._jobs_waiting = 0  # ... of which this many are blocked in submit()
        self._stopping = False
        self.busy_since: float | None = None  # monotonic start of the running batch
        self.busy_jobs: tuple[str, ...] = ()  # job ids in the running batch
        self._passes: Counter[tuple[str, int]] = Counter()  # (kind, rows) -> forward passes
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._side is not None:
            self._side.shutdown(wait=False)

    @contextlib.contextmanager
    def job(self) -> Iterator[None]:
        """Marks a job in flight, so the device thread waits for its operations."""
        with self._cond:
            self._jobs_active += 1
        try:
            yield
        finally:
            with self._cond:
                self._jobs_active -= 1
                self._cond.notify_all()

    def submit(
        self,
        key: Hashable,
        fn: BatchFn,
        tensors: Sequence[torch.Tensor],
        job_id: str | None = None,
        *,
        side: bool = False,
    ) -> Future:
        """Queues fn over `tensors` (all (rows, ...)); the future gives this op's slice of
        each output. `side`: in a small pass, fn is called with side=<an executor of one
        thread> for work it can run beside its own (ops of one key must agree)."""
        rows = int(tensors[0].shape[0])
        op = _Op(key, fn, tuple(tensors), rows, job_id, side)
        self._enqueue(op)
        return op.future

    def call(self, fn: Callable[[], object], job_id: str | None = None) -> Future:
        """Runs fn alone on the device thread (never batched)."""
        op = _Op(object(), fn, (), 0, job_id)
        self._enqueue(op)
        return op.future

    def wait(self, future: Future, timeout: float | None):
        """future.result(timeout), counted as a job blocked on the device."""
        with self._cond:
            self._jobs_waiting += 1
            self._cond.notify_all()
        try:
            return future.result(timeout)
        finally:
            with self._cond:
                self._jobs_waiting -= 1

    def _enqueue(self, op: _Op) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("batcher is stopped")
            self._pending.append(op)
            self._cond.notify_all()

    # --- the device thread ---------------------------------------------------------------------

    def _take(self) -> list[_Op] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            first = self._pending[0]
            if first.tensors:
                deadline = first.arrived + self.wait_s
                while True:
                    rows = sum(op.rows for op in self._pending if op.key == first.key)
                    # Jobs in flight but not yet blocked on us may be about to submit.
                    others_coming = self._jobs_active > self._jobs_waiting
                    remaining = deadline - time.monotonic()
                    if rows >= self.max_rows or not others_coming or remaining <= 0:
                        break
                    self._cond.wait(remaining)
            batch: list[_Op] = []
            rest: list[_Op] = []
            rows = 0
            for op in self._pending:
                fits = op.key == first.key and (not batch or rows + op.rows <= self.max_rows)
                if fits and (first.tensors or not batch):
                    batch.append(op)
                    rows += op.rows
                else:
                    rest.append(op)
            self._pending = rest
            return batch

    def pass_counts(self) -> dict[str, dict[str, int]]:
        """Forward passes so far by kind (a key's last element: encode, generate) and rows,
        as JSON: {"encode": {"2": 130, "32": 41}, ...}."""
        out: dict[str, dict[str, int]] = {}
        for (kind, rows), n in sorted(self._passes.items()):
            out.setdefault(kind, {})[str(rows)] = n
        return out

    def _loop(self) -> None:
        _name_os_thread()  # before the first forward pass: torch's intra-op threads inherit it
        self._threads = self._large_threads = torch.get_num_threads()
        while (batch := self._take()) is not None:
            # Futures abandoned by a job that timed out are skipped.
            batch = [op for op in batch if op.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            self.busy_since, self.busy_jobs = (
                time.monotonic(),
                tuple(op.job_id for op in batch if op.job_id),
            )
            try:
                self._run(batch)
            finally:
                self.busy_since, self.busy_jobs = None, ()

    def threads_for(self, rows: int) -> int | None:
        """The intra-op threads a pass of `rows` rows runs on (None: as the others)."""
        if self.small_threads is not None and rows <= self.small_rows:
            return self.small_threads
        return self._large_threads

    def _set_threads(self, rows: int) -> None:
        """A few rows are too little work to share: torch's threads would spend more time
        meeting than computing, and on a machine with a busy core a pass waits for the thread
        the scheduler put there (docs/performance.md). Set only when it changes."""
        wanted = self.threads_for(rows)
        if wanted is not None and wanted != self._threads:
            torch.set_num_threads(wanted)
            self._threads = wanted

    def _run(self, batch: list[_Op]) -> None:
        if not batch[0].tensors:  # a plain call, alone: its caller hears how it went
            call = batch[0]
            try:
                call.future.set_result(call.fn())
            except BaseException as exc:  # noqa: BLE001 - e.g. a refused checkpoint at start-up
                call.future.set_exception(exc)
            return
        try:
            key = batch[0].key
            kind = str(key[-1]) if isinstance(key, tuple) and key else str(key)
            if trace.ENABLED:
                _mark_all(batch, f"w_{kind}_start")
            n_in = len(batch[0].tensors)
            inputs = [torch.cat([op.tensors[i] for op in batch]) for i in range(n_in)]
            rows = int(inputs[0].shape[0])
            self._set_threads(rows)
            # Ops with tensors come from submit(), which takes a BatchFn only.
            fn = cast(BatchFn, batch[0].fn)
            if batch[0].side and self._side is not None and rows <= self.small_rows:
                outputs = fn(*inputs, side=self._side)
            else:
                outputs = fn(*inputs)
            self._passes[kind, rows] += 1
            if trace.ENABLED:
                _mark_all(batch, f"w_{kind}_end")
        except BaseException as exc:  # noqa: BLE001 - every waiting job must hear of it
            log.exception("device batch failed")
            for op in batch:
                if not op.future.done():
                    op.future.set_exception(exc)
            return
        start = 0
        for op in batch:
            op.future.set_result(tuple(o[start : start + op.rows] for o in outputs))
            start += op.rows


def _name_os_thread() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_NAME, THREAD_NAME, 0, 0, 0)


def _side_thread_start() -> None:
    """The side thread: named as the device thread (its CPU is the forward passes'), and one
    intra-op thread, as the small passes it shares have."""
    _name_os_thread()
    torch.set_num_threads(1)


def _mark_all(batch: list[_Op], stage: str) -> None:
    now = time.time_ns()
    for op in batch:
        trace.mark(op.job_id, stage, now)
