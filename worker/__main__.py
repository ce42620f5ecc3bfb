"""`python -m worker [celery worker options]`: a supervisor that keeps one worker process
(`python -m worker.process`) running.

The supervisor never imports torch, so it never touches CUDA before starting a child. It
restarts a child that died (SIGKILL, an out-of-memory kill, the hard time limit) with a
backoff, and stops when the child refuses to start (exit 78: a bad checkpoint or setting)
or when it was asked to stop. A child that exits 0 on its own is restarted too: Celery exits
0 after an "unrecoverable error" in its consumer. SIGTERM is passed on (warm shutdown:
running jobs finish); SIGINT from a terminal reaches the child directly, through the process
group.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time

from worker.settings import EXIT_CONFIG, get_settings

log = logging.getLogger("worker.supervisor")

PR_SET_PDEATHSIG = 1
STABLE_AFTER_S = 60.0  # a child that ran this long resets the backoff
MAX_BACKOFF_S = 30.0


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the supervisor itself is killed."""
    # Not Linux: no prctl, and the child outlives a killed supervisor.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(extra: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s: %(levelname)s/supervisor] %(message)s"
    )
    get_settings()  # invalid settings fail here, once, not in a restart loop
    stopping = False
    child: subprocess.Popen | None = None

    def on_term(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None and signum == signal.SIGTERM:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    failures = 0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "worker.process", *extra], preexec_fn=_die_with_parent
        )
        log.info("started worker process %d", child.pid)
        rc = child.wait()
        if stopping:
            return rc
        if rc == EXIT_CONFIG:
            log.critical("worker process refused to start (exit %d); not restarting", rc)
            return rc
        failures = 0 if time.monotonic() - started > STABLE_AFTER_S else failures + 1
        delay = min(MAX_BACKOFF_S, 0.25 * 2 ** max(0, failures - 1)) if failures else 0.0
        log.warning("worker process %d exited with %d; restarting in %.2f s", child.pid, rc, delay)
        time.sleep(delay)
        if stopping:
            return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
