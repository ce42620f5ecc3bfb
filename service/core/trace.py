"""Per-request timestamps for bench/request_timeline.py, off unless `SRBVAE_TRACE_TIMINGS=1`.

When on, `TraceMiddleware` (outermost, added by `create_app` only then) starts a record per
request; the route notes wall-clock times (`time.time_ns`, comparable with the worker's and the
client's on one machine) as the request passes each stage, the worker's own marks arrive with
its result (worker/trace.py), and all of them leave in the `X-Trace-Timings` header, written
when the response starts: `stage=ns,stage=ns,...`. When off, `mark` is one test of a module
constant, no middleware is installed and no header is written.
"""

from __future__ import annotations

import os
import time
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.tasks import TRACE_ENV

ENABLED = os.environ.get(TRACE_ENV) == "1"
HEADER = "x-trace-timings"

_record: ContextVar[dict[str, int] | None] = ContextVar("srbvae_trace", default=None)


def mark(stage: str, ns: int | None = None) -> None:
    """Notes when this request reached `stage` (now, or at `ns`)."""
    if ENABLED and (record := _record.get()) is not None:
        record[stage] = time.time_ns() if ns is None else ns


def merge(marks: object) -> None:
    """Adds the worker's marks (a stored result's TRACE_FIELD) to this request's."""
    if ENABLED and isinstance(marks, dict) and (record := _record.get()) is not None:
        record.update({str(k): int(v) for k, v in marks.items()})


def encode(record: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in record.items())


def decode(header: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in header.split(","):
        k, _, v = item.partition("=")
        if k and v:
            out[k.strip()] = int(v)
    return out


class TraceMiddleware:
    """Starts each HTTP request's record ("api_received") and writes it in the response's
    header when the response starts ("api_response_start")."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = {"api_received": time.time_ns()}
        token = _record.set(record)

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                record["api_response_start"] = time.time_ns()
                headers = list(message.get("headers", []))
                headers.append((HEADER.encode(), encode(record).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_traced)
        finally:
            _record.reset(token)
