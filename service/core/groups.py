"""Group commit: the jobs that reach the API together go out to Redis together.

A job request announces itself as it starts reading its upload (`arrival`) and submits its job
once the upload is converted. A submission takes every job waiting, up to `max_items`, in one
round of Redis work: one admission check, one pipeline and one message for the worker
(service/core/jobs.py), which runs them side by side and stores each job's result under its own
id (worker/groups.py). Before it goes, it waits for the job requests already on their way,
at most `gather_s`; while it is in flight, new jobs wait for the next. A lone job (no other
request on its way, none in flight) goes at once: no timer. Under load Celery's and kombu's
costs per message (receipt, the pool, the tracer, the acknowledgement) are then paid once per
group, not once per job (docs/performance.md).

    groups = GroupCommit(send, max_items=16, gather_s=0.005)  # send(items) raises on refusal
    arrival = groups.arrival()             # a request starts reading its upload
    await groups.submit(item, arrival)     # returns once its group is submitted
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(eq=False)
class _Waiting(Generic[T]):
    item: T
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Arrival:
    """A job request on its way to `submit`; closed there, or when the request ends without."""

    def __init__(self, groups: GroupCommit) -> None:
        self._groups: GroupCommit | None = groups
        groups._coming += 1

    def close(self) -> None:
        if self._groups is not None:
            self._groups._coming -= 1
            self._groups._wake()
            self._groups = None


class GroupCommit(Generic[T]):
    """Not thread-safe: one event loop."""

    def __init__(
        self, send: Callable[[list[T]], Awaitable[None]], *, max_items: int, gather_s: float
    ) -> None:
        self._send = send
        self.max_items = max_items
        self.gather_s = gather_s
        self._coming = 0  # open arrivals
        self._busy = False  # a group is gathering or in flight
        self._waiting: list[_Waiting[T]] = []
        self._woken: asyncio.Future[None] | None = None  # the gathering group's alarm
        self._groups: set[asyncio.Task] = set()  # strong references until they finish

    def arrival(self) -> Arrival:
        return Arrival(self)

    async def submit(self, item: T, arrival: Arrival | None = None) -> None:
        """Returns once `item` is submitted, alone or with others; raises what its submission
        raised. A cancelled wait takes the item out, unless its submission has begun."""
        if arrival is not None:
            arrival.close()
        waiting = _Waiting(item)
        self._waiting.append(waiting)
        if not self._busy:
            # The request's own context: a lone job's stages are marked as its own
            # (service/core/trace.py).
            self._start(contextvars.copy_context())
        else:
            self._wake()
        try:
            await waiting.done
        except asyncio.CancelledError:
            if waiting in self._waiting:
                self._waiting.remove(waiting)
            raise

    def _start(self, context: contextvars.Context) -> None:
        self._busy = True
        task = asyncio.create_task(self._group(), context=context)
        self._groups.add(task)
        task.add_done_callback(self._groups.discard)

    def _wake(self) -> None:
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    async def _gather(self) -> None:
        """Waits, at most `gather_s`, while job requests are on their way and there is room."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gather_s
        while self._coming > 0 and len(self._waiting) < self.max_items:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._woken = loop.create_future()
            try:
                await asyncio.wait_for(self._woken, remaining)
            except TimeoutError:
                return
            finally:
                self._woken = None

    async def _group(self) -> None:
        group: list[_Waiting[T]] = []
        try:
            await self._gather()
            group = self._waiting[: self.max_items]
            del self._waiting[: self.max_items]
            if group:
                await self._send([w.item for w in group])
        except Exception as exc:  # noqa: BLE001 - each waiting request hears of it
            for w in group:
                if not w.done.done():
                    w.done.set_exception(exc)
        except BaseException:  # cancelled (shutting down): so are the requests' waits
            for w in group:
                w.done.cancel()
            raise
        else:
            for w in group:
                if not w.done.done():
                    w.done.set_result(None)
        finally:
            # The jobs that came meanwhile go next, in a context of no request's.
            if self._waiting:
                self._start(contextvars.Context())
            else:
                self._busy = False
