"""/encode and /generate (service/api/routes/latents.py), against a fake job queue and fake
workers."""

from __future__ import annotations

import io

from PIL import Image

from tests.utils import images


def test_encode_answers_latents_for_every_image(client, jobs, png):
    files = [("images", (f"{i}.png", png)) for i in range(3)]
    answer = client.post("/encode", files=files)
    body = answer.json()
    assert answer.status_code == 200
    assert len(body["z"]) == 3 and len(body["e"]) == 3 and body["model"] == "digits"
    assert len(jobs.sent[-1][1].images) == 3


def test_encode_without_images_is_422(client):
    assert client.post("/encode", data={"model": "digits"}).status_code == 422


def test_encode_one_bad_image_refuses_the_batch(client, jobs, png):
    files = [("images", ("a.png", png)), ("images", ("b.png", images.tiff()))]
    answer = client.post("/encode", files=files)
    assert answer.status_code == 415 and "'b.png'" in answer.json()["detail"]
    assert jobs.sent == []


def test_generate_answers_images(client, jobs):
    answer = client.post("/generate", json={"z": [[0.0] * 8] * 2, "e": [[1.0] * 4] * 2})
    assert answer.status_code == 200 and len(answer.json()["images"]) == 2
    assert jobs.sent[-1][1].e == [[1.0] * 4] * 2


def test_generate_with_null_e_uses_the_reference(client, jobs):
    answer = client.post("/generate", json={"model": "digits", "z": [[0.0] * 8], "e": None})
    assert answer.status_code == 200 and jobs.sent[-1][1].e is None


def test_generate_answers_png_when_asked(client):
    answer = client.post("/generate", json={"z": [[0.0] * 8] * 2}, headers={"Accept": "image/png"})
    assert Image.open(io.BytesIO(answer.content)).size == (64, 32)


def test_generate_wrong_latent_size_is_422(client, jobs):
    answer = client.post("/generate", json={"z": [[0.0] * 7]})
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "z", 0]
    assert jobs.sent == []


def test_generate_e_rows_must_match_z(client):
    answer = client.post("/generate", json={"z": [[0.0] * 8] * 2, "e": [[0.0] * 4]})
    assert answer.status_code == 422


def test_generate_empty_or_malformed_body_is_422(client):
    assert client.post("/generate", json={"z": []}).status_code == 422
    assert client.post("/generate", json={"z": [["a"]]}).status_code == 422
    assert (
        client.post(
            "/generate", content=b"{", headers={"Content-Type": "application/json"}
        ).status_code
        == 422
    )
    assert client.post("/generate", json={"z": [[0.0] * 8], "extra": 1}).status_code == 422
