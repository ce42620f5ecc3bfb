"""The micro-batcher alone, with a fake forward pass that records its batch sizes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from worker.batcher import THREAD_NAME, Batcher
from worker.runtime import LONE_PASS_ROWS, small_pass_rows
from worker.settings import WorkerSettings


class Recorder:
    def __init__(self, delay: float = 0.0):
        self.sizes: list[int] = []
        self.delay = delay

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        self.sizes.append(x.shape[0])
        time.sleep(self.delay)
        return (x * 2,)


@pytest.fixture
def batcher():
    b = Batcher(max_rows=8, wait_s=0.2).start()
    yield b
    b.stop()


def test_a_lone_request_is_not_delayed_by_the_batch_wait(batcher):
    fn = Recorder()
    with batcher.job():
        t0 = time.monotonic()
        (out,) = batcher.wait(batcher.submit("k", fn, [torch.ones(3, 2)]), 5)
    assert time.monotonic() - t0 < 0.1  # well under wait_s: no other job was in flight
    assert torch.equal(out, torch.full((3, 2), 2.0)) and fn.sizes == [3]


def test_concurrent_jobs_share_one_forward_and_get_their_own_rows(batcher):
    fn = Recorder()
    results = {}
    start = threading.Barrier(4)

    def job(i: int) -> None:
        with batcher.job():
            start.wait()
            results[i] = batcher.wait(batcher.submit("k", fn, [torch.full((2, 1), float(i))]), 5)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fn.sizes == [8]
    for i in range(4):
        assert torch.equal(results[i][0], torch.full((2, 1), 2.0 * i))


def test_batches_never_exceed_max_rows_and_keys_never_mix(batcher):
    fn_a, fn_b = Recorder(delay=0.05), Recorder()
    blocker = batcher.call(lambda: time.sleep(0.1))  # let everything queue up behind it
    futures = [batcher.submit("a", fn_a, [torch.ones(3, 1)]) for _ in range(5)]
    futures += [batcher.submit("b", fn_b, [torch.ones(1, 1)]) for _ in range(2)]
    blocker.result(5)
    for f in futures:
        f.result(5)
    assert all(size <= 8 for size in fn_a.sizes) and sum(fn_a.sizes) == 15
    assert fn_b.sizes == [2]


def test_an_abandoned_request_is_skipped(batcher):
    fn = Recorder()
    blocker = batcher.call(lambda: time.sleep(0.1))
    dropped = batcher.submit("k", fn, [torch.ones(5, 1)])
    assert dropped.cancel()
    kept = batcher.submit("k", fn, [torch.ones(1, 1)])
    blocker.result(5)
    kept.result(5)
    assert fn.sizes == [1]


def test_a_failing_forward_fails_every_request_in_its_batch(batcher):
    def boom(x):
        raise RuntimeError("device on fire")

    blocker = batcher.call(lambda: time.sleep(0.05))
    futures = [batcher.submit("k", boom, [torch.ones(1, 1)]) for _ in range(3)]
    blocker.result(5)
    for f in futures:
        with pytest.raises(RuntimeError, match="device on fire"):
            f.result(5)


def test_forward_passes_are_counted_by_kind_and_rows(batcher):
    fn = Recorder()
    with batcher.job():
        batcher.wait(batcher.submit(("digits", "encode"), fn, [torch.ones(2, 2)]), 5)
        batcher.wait(batcher.submit(("digits", "encode"), fn, [torch.ones(2, 2)]), 5)
        batcher.wait(batcher.submit(("digits", "generate"), fn, [torch.ones(1, 2)]), 5)
        batcher.wait(batcher.call(lambda: None), 5)  # a plain call is no forward pass
    assert batcher.pass_counts() == {"encode": {"2": 2}, "generate": {"1": 1}}


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux's /proc")
def test_the_device_thread_and_its_intra_op_threads_carry_its_name(batcher):
    def forward(x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.nn.functional.conv2d(x, torch.ones(8, 3, 3, 3)),)

    with batcher.job():
        batcher.wait(batcher.submit("k", forward, [torch.ones(4, 3, 32, 32)]), 5)
    names = [(t / "comm").read_text().strip() for t in Path("/proc/self/task").iterdir()]
    assert names.count(THREAD_NAME.decode()) >= 1


def test_small_passes_run_on_their_own_thread_count():
    seen: dict[int, int] = {}

    def fn(x: torch.Tensor) -> tuple[torch.Tensor]:
        seen[x.shape[0]] = torch.get_num_threads()
        return (x,)

    before = torch.get_num_threads()
    b = Batcher(max_rows=64, wait_s=0.0, small_rows=3, small_threads=1).start()
    try:
        with b.job():
            for rows in (2, 3, 4, 1):
                b.wait(b.submit("k", fn, [torch.ones(rows, 1)]), 5)
    finally:
        b.stop()
        torch.set_num_threads(before)  # the setting is the process's
    assert seen[2] == seen[3] == seen[1] == 1
    assert seen[4] == before  # larger passes: as many as torch had when the thread started
    assert b.threads_for(3) == 1 and b.threads_for(4) == before


def test_without_a_small_pass_setting_every_pass_keeps_torchs_threads():
    b = Batcher(max_rows=8, wait_s=0.0)
    assert b.threads_for(1) is None  # the device thread has not started: nothing to set


def _side_recorder(seen: dict):
    def encode(x: torch.Tensor, side=None) -> tuple[torch.Tensor]:
        seen[x.shape[0]] = side
        if side is not None:  # the side thread: named as the device thread, one intra-op thread
            seen["side"] = side.submit(
                lambda: (threading.current_thread().name, torch.get_num_threads())
            ).result()
        return (x,)

    return encode


def test_small_passes_of_side_ops_get_a_side_thread_and_larger_ones_do_not():
    seen: dict = {}
    fn = _side_recorder(seen)
    before = torch.get_num_threads()
    b = Batcher(max_rows=64, wait_s=0.0, small_rows=3, small_threads=1, side_thread=True).start()
    try:
        with b.job():
            for rows in (2, 4):
                b.wait(b.submit("k", fn, [torch.ones(rows, 1)], side=True), 5)
            b.wait(b.submit("other", Recorder(), [torch.ones(2, 1)]), 5)  # no side: plain call
    finally:
        b.stop()
        torch.set_num_threads(before)
    assert seen[2] is not None and seen[4] is None
    name, threads = seen["side"]
    assert name.startswith("device-side") and threads == 1


def test_without_a_side_thread_side_ops_run_alone():
    seen: dict = {}
    before = torch.get_num_threads()
    b = Batcher(max_rows=64, wait_s=0.0, small_rows=3, small_threads=1).start()
    try:
        with b.job():
            b.wait(b.submit("k", _side_recorder(seen), [torch.ones(2, 1)], side=True), 5)
    finally:
        b.stop()
        torch.set_num_threads(before)
    assert seen == {2: None}


def test_a_failing_plain_call_fails_its_caller_alone(batcher, caplog):
    def refuse() -> None:
        raise RuntimeError("checkpoint refused")

    with pytest.raises(RuntimeError, match="checkpoint refused"):
        batcher.call(refuse).result(5)
    assert batcher.call(lambda: 42).result(5) == 42  # the device thread goes on
    assert "device batch failed" not in caplog.text  # no forward pass failed


@pytest.mark.parametrize(
    ("setting", "device", "threads", "side", "expected"),
    [
        (None, "cpu", 2, True, 64),  # two intra-op threads: every pass on two device threads
        (None, "cpu", 1, True, 64),
        (None, "cpu", 2, False, LONE_PASS_ROWS),  # no side thread: one thread would be half
        (None, "cpu", 8, True, LONE_PASS_ROWS),  # more: large passes keep torch's threads
        (None, "cuda", 2, True, LONE_PASS_ROWS),
        (0, "cpu", 2, True, 0),  # a setting wins
        (16, "cpu", 8, True, 16),
    ],
)
def test_the_small_pass_size_follows_the_cpus_threads(setting, device, threads, side, expected):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        s = WorkerSettings(max_batch=64, small_pass_rows=setting, small_pass_side_thread=side)
        assert small_pass_rows(s, torch.device(device)) == expected
    finally:
        torch.set_num_threads(before)
