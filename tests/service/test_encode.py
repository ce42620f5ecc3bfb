from __future__ import annotations

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
