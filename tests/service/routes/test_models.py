"""/models (service/api/routes/models.py)."""

from __future__ import annotations

from tests.service.fakes import model_info


def test_models_lists_each_model_with_its_card(client, workers):
    workers._models["faces"] = model_info("faces", 64)
    body = client.get("/models").json()
    assert body["default"] == "digits"
    assert [(m["name"], m["resolution"]) for m in body["models"]] == [("digits", 32), ("faces", 64)]
    assert body["models"][0]["card"]["data"] == {"source": "test"}
    assert body["models"][0]["method"] == "sRb-VAE"


def test_models_is_empty_without_workers(client, workers):
    workers._models = {}
    assert client.get("/models").json()["models"] == []
