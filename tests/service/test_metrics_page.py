from __future__ import annotations


def test_metrics_count_requests_by_route_and_status(client, png):
    client.post("/sample", files={"image": ("a.png", png)}, data={"n": "2"})
    client.post("/sample", files={"image": ("a.png", b"junk")})
    text = client.get("/metrics").text
    assert 'srbvae_api_requests_total{method="POST",route="/sample",status="200"} 1.0' in text
    assert 'srbvae_api_requests_total{method="POST",route="/sample",status="400"} 1.0' in text
    assert "srbvae_api_request_seconds_bucket" in text and "srbvae_api_queue_depth" in text


def test_metrics_label_unknown_paths_as_one_route(client):
    client.get("/no/such/path")
    assert 'route="other",status="404"' in client.get("/metrics").text


def test_page_has_the_transfer_and_sample_forms(client):
    html = client.get("/").text
    assert 'id="transfer-form"' in html and 'id="sample-form"' in html
    assert client.get("/static/app.js").status_code == 200


def test_docs_and_openapi_describe_the_upload_routes(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/transfer"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"image", "attributes", "strength", "model"} <= set(body["schema"]["properties"])
    assert "413" in spec["paths"]["/transfer"]["post"]["responses"]
