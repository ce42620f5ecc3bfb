"""Request timestamps for bench/request_timeline.py (service/core/trace.py), and the admission
check sent while the uploads are converted (JobQueue.admission): same answers as before."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from service.core import trace
from service.main import create_app
from tests.service.conftest import small_settings


async def _endpoint(request) -> Response:
    trace.mark("api_upload_parsed")
    trace.merge({"w_task_start": 7})
    return Response(b"ok")


def traced_app() -> trace.TraceMiddleware:
    return trace.TraceMiddleware(Starlette(routes=[Route("/", _endpoint, methods=["POST"])]))


def test_the_header_carries_every_mark_in_order(monkeypatch):
    monkeypatch.setattr(trace, "ENABLED", True)
    with TestClient(traced_app()) as client:
        answer = client.post("/")
    record = trace.decode(answer.headers[trace.HEADER])
    assert list(record) == [
        "api_received",
        "api_upload_parsed",
        "w_task_start",
        "api_response_start",
    ]
    assert record["api_received"] <= record["api_upload_parsed"] <= record["api_response_start"]
    assert record["w_task_start"] == 7 and answer.content == b"ok"


def test_marks_outside_a_traced_request_or_with_tracing_off_do_nothing(monkeypatch):
    monkeypatch.setattr(trace, "ENABLED", True)
    trace.mark("api_woke")  # no request: no record to write to
    monkeypatch.setattr(trace, "ENABLED", False)
    with TestClient(traced_app()) as client:
        answer = client.post("/")
    assert set(trace.decode(answer.headers[trace.HEADER])) == {"api_received", "api_response_start"}


def test_the_app_has_no_trace_middleware_unless_tracing_is_on(png):
    assert not trace.ENABLED  # the tests run without SRBVAE_TRACE_TIMINGS
    app = create_app(small_settings())
    assert all(m.cls is not trace.TraceMiddleware for m in app.user_middleware)


def test_encode_and_decode_are_inverse():
    record = {"a": 1, "b_c": 1_700_000_000_000_000_000}
    assert trace.decode(trace.encode(record)) == record
    assert trace.decode("") == {}
