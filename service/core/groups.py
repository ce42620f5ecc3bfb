"""Group commit: the jobs that arrive while a submission to Redis is in flight go out together.

A lone job is sent at once, by its own request (no timer). While its round trips are in flight
(the admission check, the pipeline that queues it), the jobs that arrive wait; once it is back,
all of them, up to `max_items`, go out in one submission: one admission check, one pipeline and
one message for the worker (service/core/jobs.py), which runs them side by side and stores
each job's result under its own id (worker/groups.py). Under load Celery's and kombu's costs per
message (receipt, the pool, the tracer, the acknowledgement) are then paid once per group, not
once per job (docs/performance.md).

    groups = GroupCommit(send, max_items=16)   # send(items): one submission, raises on refusal
    await groups.submit(item)                  # returns once its submission is done
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


class GroupCommit(Generic[T]):
    """Not thread-safe: one event loop."""

    def __init__(self, send: Callable[[list[T]], Awaitable[None]], *, max_items: int) -> None:
        self._send = send
        self.max_items = max_items
        self._busy = False  # a submission is in flight
        self._waiting: list[_Waiting[T]] = []
        self._flushes: set[asyncio.Task] = set()  # strong references until they finish

    async def submit(self, item: T) -> None:
        """Returns once `item` is submitted, alone or with others; raises what its submission
        raised. A cancelled wait takes the item out, unless its submission has begun."""
        if not self._busy:
            self._busy = True
            try:
                await self._send([item])
            finally:
                self._next()
            return
        waiting = _Waiting(item)
        self._waiting.append(waiting)
        try:
            await waiting.done
        except asyncio.CancelledError:
            if waiting in self._waiting:
                self._waiting.remove(waiting)
            raise

    def _next(self) -> None:
        """After a submission: the jobs that waited for it go out now, as one."""
        if not self._waiting:
            self._busy = False
            return
        group = self._waiting[: self.max_items]
        del self._waiting[: self.max_items]
        # A context of its own: the request that happened to finish first is not the group's
        # (service/core/trace.py marks by request).
        task = asyncio.create_task(self._flush(group), context=contextvars.Context())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, group: list[_Waiting[T]]) -> None:
        try:
            await self._send([w.item for w in group])
        except BaseException as exc:  # noqa: BLE001 - each waiting request hears of it
            for w in group:
                if w.done.done():
                    continue
                if isinstance(exc, Exception):
                    w.done.set_exception(exc)
                else:  # cancelled (shutting down): so are the requests' waits
                    w.done.cancel()
            if not isinstance(exc, Exception):
                raise
        else:
            for w in group:
                if not w.done.done():
                    w.done.set_result(None)
        finally:
            self._next()
