"""The app as a whole (service/main.py): its interactive docs and OpenAPI schema, and its
modules' imports."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace

from service.main import create_app
from tests.service.conftest import small_settings
from tests.utils.imports import cycles, import_graph


def test_service_modules_import_no_cycle():
    assert cycles(import_graph("service", "contract")) == []


def test_docs_and_openapi_describe_the_upload_routes(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/transfer"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"image", "attributes", "strength", "model"} <= set(body["schema"]["properties"])
    assert {"face", "attributes_face", "output"} <= set(body["schema"]["properties"])  # photos
    assert "image/jpeg" in spec["paths"]["/transfer"]["post"]["responses"]["200"]["content"]
    assert "413" in spec["paths"]["/transfer"]["post"]["responses"]
    body = spec["paths"]["/interpolate"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"a", "b", "steps", "model"} <= set(body["schema"]["properties"])
    body = spec["paths"]["/neutralize"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"image", "model"} <= set(body["schema"]["properties"])


@pytest.mark.parametrize("enabled", [False, True])
def test_opentelemetry_providers_are_looked_up_only_when_asked_for(monkeypatch, enabled):
    """Off by default: FastAPI's native telemetry asks for the global providers on every
    request otherwise, which costs CPU when no OpenTelemetry SDK is installed."""
    looked_up = []
    real = trace.get_tracer_provider

    def counting() -> trace.TracerProvider:
        looked_up.append(1)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counting)
    app = create_app(small_settings(opentelemetry=enabled))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    assert bool(looked_up) is enabled
