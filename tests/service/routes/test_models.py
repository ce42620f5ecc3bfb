"""/models and /models/{name}/examples (service/api/routes/models.py)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from service.core.config import Settings
from tests.service.conftest import small_settings
from tests.service.fakes import model_info
from tests.utils import images

REPO = Path(__file__).resolve().parents[3]


def test_models_lists_each_model_with_its_card(client, workers):
    workers._models["faces"] = model_info("faces", 64).model_copy(
        update={"face_zoom": 1.8, "rendering": "input"}
    )
    body = client.get("/models").json()
    assert body["default"] == "digits"
    assert [(m["name"], m["resolution"]) for m in body["models"]] == [("digits", 32), ("faces", 64)]
    assert body["models"][0]["card"]["data"] == {"source": "test"}
    assert body["models"][0]["method"] == "sRb-VAE"
    assert [m["face_zoom"] for m in body["models"]] == [None, 1.8]  # faces take photos
    assert [m["rendering"] for m in body["models"]] == ["generator", "input"]


def test_models_is_empty_without_workers(client, workers):
    workers._models = {}
    assert client.get("/models").json()["models"] == []


def test_default_model_is_faces():
    assert Settings(_env_file=None).default_model == "faces"


def write_examples(model_dir: Path, name: str = "faces") -> None:
    directory = model_dir / name / "examples"
    directory.mkdir(parents=True)
    (directory / "happiness.png").write_bytes(images.png((32, 32), (200, 150, 120)))
    (directory / "secret.png").write_bytes(images.png())  # in the directory, not in the listing
    listing = {"source": "faces", "split": "eval_score", "description": "held-out images",
               "examples": [{"file": "happiness.png", "label": "happiness", "index": 2}]}  # fmt: skip
    (directory / "examples.json").write_text(json.dumps(listing))


@pytest.fixture
def model_dir(tmp_path):
    write_examples(tmp_path)
    return tmp_path


@pytest.fixture
def settings(model_dir):
    return small_settings(model_dir=model_dir)


def test_examples_lists_the_held_out_images(client):
    body = client.get("/models/faces/examples").json()
    assert body["model"] == "faces" and body["split"] == "eval_score"
    assert body["examples"] == [
        {"label": "happiness", "index": 2, "url": "/models/faces/examples/happiness.png"}
    ]
    image = client.get(body["examples"][0]["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (32, 32)


def test_examples_of_a_model_without_them_is_404(client):
    answer = client.get("/models/digits/examples")
    assert answer.status_code == 404 and "no examples" in answer.json()["detail"]


def test_example_not_in_the_listing_is_404(client):
    assert client.get("/models/faces/examples/secret.png").status_code == 404
    assert client.get("/models/faces/examples/examples.json").status_code == 404


def test_example_names_cannot_leave_the_model_directory(client):
    assert client.get("/models/..%2Ffaces/examples").status_code in (404, 422)
    assert client.get("/models/faces/examples/..%2Fmodel.json").status_code in (404, 422)
    assert client.get("/models/.hidden/examples").status_code == 422


def test_shipped_examples_are_held_out_and_at_the_models_resolution():
    for name in ("faces", "digits"):
        directory = REPO / "models" / name / "examples"
        listing = json.loads((directory / "examples.json").read_text())
        manifest = json.loads((REPO / "models" / name / "model.json").read_text())
        assert listing["split"] == "eval_score" and listing["examples"]
        for e in listing["examples"]:
            size = manifest["model_config"]["resolution"]
            assert Image.open(directory / e["file"]).size == (size, size)
