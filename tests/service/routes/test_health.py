"""/healthz, /readyz and /metrics (service/api/routes/health.py)."""

from __future__ import annotations

from tests.service.fakes import model_info


def test_healthz_is_ok_without_redis(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ready_when_a_worker_holds_the_default_model(client):
    answer = client.get("/readyz")
    assert answer.status_code == 200 and answer.json()["models"] == ["digits"]


def test_readyz_is_503_when_no_worker_holds_the_default_model(client, workers):
    workers._models = {"faces": model_info("faces")}
    answer = client.get("/readyz")
    assert answer.status_code == 503 and "retry-after" in answer.headers


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
