"""The app as a whole (service/main.py): its interactive docs and OpenAPI schema, and its
modules' imports."""

from __future__ import annotations

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
