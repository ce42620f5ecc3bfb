"""Stopping a run on SIGTERM or Ctrl-C between two steps, so the state it saves is exact.

`docker stop`, Kubernetes, Slurm and `kill` send SIGTERM; a terminal sends SIGINT. Raising from
the signal handler could land between the discriminator and the model update of one step, and
the state saved then would be neither step. Instead the first signal only asks: the loop
finishes the step it is in, saves, and raises `StopRequested`. A second signal stops at once
(the last snapshot stays as it was).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class StopRequested(KeyboardInterrupt):
    """The run was asked to stop and saved its state; a KeyboardInterrupt, as Ctrl-C was."""

    def __init__(self, signum: int, step: int):
        self.signum = signum
        self.step = step
        super().__init__(f"stopped by {self.name} at step {step}; the training state is saved")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class StopSignals:
    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:  # the second signal: no more waiting
            raise KeyboardInterrupt
        self.signum = signum


@contextlib.contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """Installs the handlers for the duration of a run, where signals can be handled (the main
    thread). SIGINT stays ignored where the shell ignores it (a job started with `&`)."""
    stop = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, stop._handle)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
