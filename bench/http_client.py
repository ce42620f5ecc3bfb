"""A load generator's HTTP/1.1 client: keep-alive connections, requests built once, replies
read with their status and body and nothing else.

A benchmark's client shares the machine with the stack it measures. httpx, a full client (a
multipart body encoded, headers modelled, a response object built per request), spends about
5 ms of CPU a request on the 2-core development machine (bench/request_cost.py's client
column): at concurrency 16 that is a fifth of the machine taken from the stack, and at
concurrency 1 milliseconds of every round trip that are the client's, not the service's.
Load generators (wrk, hey, k6) are built the other way, and so is this one: each request's
bytes are prepared before the run, and a reply is read as far as it must be to know it is
whole (the status line, Content-Length or chunked framing).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def multipart_request(
    host: str, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> bytes:
    """A whole `POST` with a multipart/form-data body, as bytes to write as they are."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, data, content_type) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAccept: image/png\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive connection; one request at a time. A connection the server closed while
    it was idle (uvicorn after 5 s) is opened again, as any client does."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        conn = cls(host, port)
        await conn._connect()
        return conn

    async def _connect(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, request: bytes) -> Reply:
        assert self.reader is not None and self.writer is not None
        if self.reader.at_eof():
            await self._connect()
            assert self.reader is not None and self.writer is not None
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                raise
            # Closed while idle, before our request was read: send it again, once.
            await self._connect()
            assert self.reader is not None and self.writer is not None
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            return Reply(status, await self._chunks())
        if length is None:
            raise ConnectionError("a reply without Content-Length or chunked framing")
        return Reply(status, await self.reader.readexactly(length))

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        body = bytearray()
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers are sent to this client
                return bytes(body)
            body += await self.reader.readexactly(size)
            await self.reader.readexactly(2)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
