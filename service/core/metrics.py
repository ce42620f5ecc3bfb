"""Prometheus metrics: requests and latencies by route and status, queue depth, job durations.

Each app gets its own registry, so several apps in one process (the tests) do not collide.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Sub-10 ms buckets: the service's own overhead is a few milliseconds per request.
_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "srbvae_api_requests", "HTTP requests", ["method", "route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "srbvae_api_request_seconds", "HTTP request latency", ["method", "route"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "srbvae_api_queue_depth", "jobs waiting in the queue", registry=self.registry
        )
        self.jobs = Counter(
            "srbvae_api_jobs", "jobs by task and outcome", ["task", "outcome"],
            registry=self.registry,
        )  # fmt: skip
        self.job_seconds = Histogram(
            "srbvae_api_job_seconds", "from submission to result, as the API waits for it",
            ["task"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.worker_seconds = Histogram(
            "srbvae_api_worker_seconds", "time the worker reports spending on a job",
            ["task"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip


class MetricsMiddleware:
    """Counts every answer, those of other middleware (413 before routing) included. Routes are
    labelled by their template, unknown paths as one label, so labels stay few."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or _known_path(scope)
            self.metrics.requests.labels(scope["method"], label, str(status)).inc()
            self.metrics.latency.labels(scope["method"], label).observe(time.perf_counter() - start)


def _known_path(scope: Scope) -> str:
    app = scope.get("app")
    path = scope.get("path", "")
    for route in getattr(app, "routes", ()):
        if getattr(route, "path", None) == path:
            return path
    return "other"
