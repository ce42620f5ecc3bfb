"""uvicorn apps that take a request and answer a fixed PNG-sized body, doing nothing else: the
floor of an HTTP round trip for bench/request_timeline.py (uvicorn picks uvloop and httptools
when installed, as for the API).

    python -m uvicorn bench.noop_api:app --port 8001

- `POST /raw`: a bare ASGI handler: reads the body, answers 200.
- `POST /fastapi`: a FastAPI route that reads the body (`await request.body()`), answers 200.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.types import Receive, Scope, Send

ANSWER = bytes(3000)  # about a 32x32 answer's PNG
HEADERS = [(b"content-type", b"image/png"), (b"content-length", str(len(ANSWER)).encode())]

api = FastAPI()


@api.post("/fastapi")
async def fastapi_noop(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="image/png")


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] == "/raw":
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": ANSWER})
        return
    await api(scope, receive, send)
