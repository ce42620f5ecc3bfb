"""Request bodies read as they stream in, with every limit enforced before the next chunk.

Two layers: `BodyLimitMiddleware` caps any request body (refusing a too-large Content-Length
before reading a byte, and counting bytes for bodies without one, chunked included), and
`read_multipart` parses multipart forms into memory with caps per file, per field and on their
numbers. Starlette's own parser spools files over 1 MiB to a temporary file; uploads here are
never written to disk.

Given the API's `MemoryBudget` (service/core/budget.py), `read_multipart` reserves what the
body will hold before reading a byte of it, plus `DECODE_ALLOWANCE` for decoding it; a route
grows that with `Form.reserve_decoding` once the images' headers say more, and `Form.release`
drops the files and gives it all back as soon as the images are converted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.core.budget import MemoryBudget, Reservation
from service.core.errors import ApiError, Unavailable

if TYPE_CHECKING:  # python-multipart defines its callback TypedDict for type checkers only
    from python_multipart.multipart import MultipartCallbacks

MiB = 1024 * 1024
# Reserved with every body for decoding its images, so that the common case (JPEG photos,
# decoded in draft mode at a few times the model's resolution: 1 MB for 12 megapixels at 64,
# 4 MB at 128) needs no second wait; larger decodes reserve the rest before they start.
DECODE_ALLOWANCE = 4 * MiB


@dataclass(frozen=True)
class UploadLimits:
    max_upload_bytes: int
    max_files: int
    max_fields: int
    max_field_bytes: int
    max_request_bytes: int | None = None  # what a body without Content-Length may reach


@dataclass
class Upload:
    field: str
    filename: str
    data: bytes


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)
    reservation: Reservation | None = None  # its share of the memory budget, while held
    body_bytes: int = 0  # of the reservation, what holding the body takes

    def files_named(self, name: str) -> list[Upload]:
        return [f for f in self.files if f.field == name]

    async def reserve_decoding(self, nbytes: int) -> None:
        """Waits until decoding `nbytes` more fits the budget; 503 when it does not in time."""
        if self.reservation is not None:
            total = self.body_bytes + max(nbytes, DECODE_ALLOWANCE)
            await self.reservation.grow_to(total, "decoding an upload")

    def release(self) -> None:
        """Drops the files' bytes and gives back the reservation (once; again is harmless)."""
        for upload in self.files:
            upload.data = b""
        if self.reservation is not None:
            self.reservation.release()


def body_cost(request: Request, limits: UploadLimits) -> int:
    """Bytes that reading this body holds at its peak: the body, plus one file copied out of
    the parser's buffer at its end."""
    length = _content_length(request.scope)
    if length is None:
        length = limits.max_request_bytes or limits.max_upload_bytes * limits.max_files
    return length + min(length, limits.max_upload_bytes)


def _too_large(what: str, limit: int) -> ApiError:
    return ApiError(413, f"{what} is over the limit of {limit} bytes")


class BodyLimitMiddleware:
    """Answers 413 as soon as a body is known to exceed `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_json(send, 413, f"request body is over the limit of {self.max_bytes} bytes")
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the handler's read, FastAPI passes HTTPExceptions through.
                    raise _too_large("request body", self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the unread body must not be taken as a request
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _Collector:
    """python-multipart callbacks that keep parts in memory within the limits."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.form = Form()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._data = bytearray()
        self._name = ""
        self._filename: str | None = None

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._data = bytearray()
        self._filename = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise ApiError(400, "a multipart part has no name")
        self._name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            self._filename = options[b"filename"].decode("utf-8", "replace")
            if len(self.form.files) >= self.limits.max_files:
                raise ApiError(413, f"more than {self.limits.max_files} files")
        elif len(self.form.fields) >= self.limits.max_fields:
            raise ApiError(413, f"more than {self.limits.max_fields} form fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]
        if self._filename is not None:
            if len(self._data) > self.limits.max_upload_bytes:
                raise _too_large(f"file {self._name!r}", self.limits.max_upload_bytes)
        elif len(self._data) > self.limits.max_field_bytes:
            raise _too_large(f"field {self._name!r}", self.limits.max_field_bytes)

    def on_part_end(self) -> None:
        if self._filename is not None:
            self.form.files.append(Upload(self._name, self._filename, bytes(self._data)))
        else:
            self.form.fields[self._name] = self._data.decode("utf-8", "replace")
        self._data = bytearray()


async def read_multipart(
    request: Request, limits: UploadLimits, budget: MemoryBudget | None = None
) -> Form:
    """The form, within the limits. With a `budget`, its reservation is taken first (503 and
    the body discarded unread when it does not fit in time) and held by the form."""
    if budget is None:
        return await _read_form(request, limits)
    reservation = budget.reservation()
    cost = body_cost(request, limits)
    try:
        await reservation.grow_to(cost + DECODE_ALLOWANCE, "an upload")
    except Unavailable:
        await _discard(request)  # so that the client reads the 503 rather than a reset
        raise
    try:
        form = await _read_form(request, limits)
    except BaseException:
        reservation.release()
        raise
    form.reservation, form.body_bytes = reservation, cost
    return form


async def _discard(request: Request) -> None:
    """Reads and drops the rest of the body, a chunk at a time."""
    try:
        async for _ in request.stream():
            pass
    except Exception:  # noqa: BLE001 - a client gone or a body over the limit: nothing to drain
        return


async def _read_form(request: Request, limits: UploadLimits) -> Form:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"application/x-www-form-urlencoded":
        # Fields without files: answered 422 for the missing files rather than 415.
        return await _read_urlencoded(request, limits)
    if content_type != b"multipart/form-data":
        raise ApiError(415, "send the images as multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "multipart body without a boundary")
    collector = _Collector(limits)
    callbacks: MultipartCallbacks = {
        "on_part_begin": collector.on_part_begin,
        "on_header_field": collector.on_header_field,
        "on_header_value": collector.on_header_value,
        "on_header_end": collector.on_header_end,
        "on_headers_finished": collector.on_headers_finished,
        "on_part_data": collector.on_part_data,
        "on_part_end": collector.on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        raise
    except Exception as exc:  # python-multipart's parse errors have several types
        raise ApiError(400, f"malformed multipart body ({exc})") from exc
    return collector.form


async def _read_urlencoded(request: Request, limits: UploadLimits) -> Form:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_field_bytes * limits.max_fields:
            raise _too_large("form", limits.max_field_bytes * limits.max_fields)
    pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    if len(pairs) > limits.max_fields:
        raise ApiError(413, f"more than {limits.max_fields} form fields")
    return Form(fields=dict(pairs))
