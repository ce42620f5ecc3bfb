"""One worker process: `python -m worker.process` starts Celery's worker with our options.

Usually started by the supervisor (`python -m worker`), which restarts it when it dies.
Extra arguments are passed on to `celery worker` (e.g. --loglevel DEBUG).
"""

from __future__ import annotations

import logging
import sys

from contract.tasks import QUEUE
from worker.settings import get_settings


def argv(extra: list[str]) -> list[str]:
    s = get_settings()
    return [
        "worker",
        f"--pool={s.pool}",
        f"--concurrency={s.concurrency}",
        f"--queues={QUEUE}",
        f"--hostname={s.name}@%h",
        f"--loglevel={s.loglevel}",
        # Our registry replaces Celery's worker events; mingle costs a second at start-up.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        *extra,
    ]


def main(extra: list[str] | None = None) -> None:
    s = get_settings()
    logging.basicConfig(
        level=s.loglevel, format="[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"
    )
    from worker.app import app  # after logging: importing it imports torch

    app.worker_main(argv(sys.argv[1:] if extra is None else extra))


if __name__ == "__main__":
    main()
