from __future__ import annotations

from tests.service.fakes import model_info


def test_healthz_is_ok_without_redis(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ready_when_a_worker_holds_the_default_model(client):
    answer = client.get("/readyz")
    assert answer.status_code == 200 and answer.json()["models"] == ["digits"]


def test_readyz_is_503_when_no_worker_holds_the_default_model(client, registry):
    registry._models = {"faces": model_info("faces")}
    answer = client.get("/readyz")
    assert answer.status_code == 503 and "retry-after" in answer.headers


def test_models_lists_each_model_with_its_card(client, registry):
    registry._models["faces"] = model_info("faces", 64)
    body = client.get("/models").json()
    assert body["default"] == "digits"
    assert [(m["name"], m["resolution"]) for m in body["models"]] == [("digits", 32), ("faces", 64)]
    assert body["models"][0]["card"]["data"] == {"source": "test"}


def test_models_is_empty_without_workers(client, registry):
    registry._models = {}
    assert client.get("/models").json()["models"] == []
