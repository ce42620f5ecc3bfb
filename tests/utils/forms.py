"""Request bodies built by hand, for what a client library would not send: raw multipart
(any filename bytes, any number of parts) and bodies without Content-Length."""

from __future__ import annotations

from collections.abc import Iterator

BOUNDARY = "testboundary"
HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart(
    parts: list[tuple[str, str | bytes | None, bytes]], boundary: str = BOUNDARY
) -> bytes:
    """(name, filename or None for a text field, data) -> a multipart/form-data body. A
    bytes filename goes in as it is (quotes, control characters, invalid UTF-8)."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'.encode()
        if filename is not None:
            raw = filename if isinstance(filename, bytes) else filename.encode()
            disposition += b'; filename="' + raw + b'"'
        out += f"--{boundary}\r\n".encode() + b"Content-Disposition: " + disposition + b"\r\n\r\n"
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def chunks(body: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """A body without Content-Length: httpx sends it chunked."""
    for i in range(0, len(body), size):
        yield body[i : i + size]
