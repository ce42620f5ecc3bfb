"""The load generator's client (bench/http_client.py): its request is a form Starlette reads
back, and its replies are read whole, on a connection kept or opened again."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from bench.http_client import Connection, multipart_request

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # any bytes: the form carries them as they are


def test_the_request_is_a_form_starlette_reads_back():
    raw = multipart_request(
        "localhost:8000", "/transfer", {"model": "digits"},
        {"image": ("image.png", PNG, "image/png"), "attributes": ("a.png", PNG[::-1], "image/png")},
    )  # fmt: skip
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /transfer HTTP/1.1"
    headers = [tuple(line.lower().encode().split(b": ", 1)) for line in lines[1:]]
    assert (b"content-length", str(len(body)).encode()) in headers

    async def read() -> tuple[str, bytes, bytes, str]:
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "path": "/transfer", "headers": headers}
        form = await Request(scope, receive).form()
        image, attributes = form["image"], form["attributes"]
        return form["model"], await image.read(), await attributes.read(), image.filename

    model, image, attributes, filename = asyncio.run(read())
    assert (model, image, attributes, filename) == ("digits", PNG, PNG[::-1], "image.png")


async def _serve(replies: list[bytes], close_after: int | None = None):
    """A server that answers each request read with the next of `replies`, and closes each
    connection after `close_after` replies; returns (server, port, requests read)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = 0
        try:
            while close_after is None or answered < close_after:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                seen.append(head + await reader.readexactly(length))
                writer.write(replies[(len(seen) - 1) % len(replies)])
                await writer.drain()
                answered += 1
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], seen


def test_replies_framed_by_length_or_chunks_are_read_whole_on_one_connection():
    replies = [
        b"HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: 5\r\n\r\nhello",
        b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nbus\r\n1;x=y\r\ny\r\n0\r\n\r\n",
    ]
    request = multipart_request("h", "/transfer", {"model": "digits"}, {})

    async def run():
        server, port, seen = await _serve(replies)
        async with server:
            conn = await Connection.open("127.0.0.1", port)
            got = [await conn.send(request) for _ in range(3)]
            await conn.close()
        return got, seen

    got, seen = asyncio.run(run())
    assert [(r.status, r.body) for r in got] == [(200, b"hello"), (503, b"busy"), (200, b"hello")]
    assert seen == [request] * 3


@pytest.mark.parametrize("pause_s", [0.05, 0.0])
def test_a_connection_the_server_closed_is_opened_again(pause_s):
    """Whether the close has reached the client before its next request (0.05 s) or not."""
    reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    request = multipart_request("h", "/transfer", {}, {"image": ("i.png", PNG, "image/png")})

    async def run():
        server, port, seen = await _serve([reply], close_after=1)
        async with server:
            conn = await Connection.open("127.0.0.1", port)
            got = []
            for _ in range(3):
                got.append(await conn.send(request))
                await asyncio.sleep(pause_s)
            await conn.close()
        return got, seen

    got, seen = asyncio.run(run())
    assert [(r.status, r.body) for r in got] == [(200, b"ok")] * 3
    assert len(seen) == 3
