from __future__ import annotations

import pytest

from service.core.jobs import JobError
from tests.service.conftest import JSON, decode_b64, sent_image
from tests.service.fakes import SHA
from tests.utils import images


def post(client, image: bytes, attributes: bytes | None = None, name="a.png", **data):
    files = {"image": (name, image, "image/png")}
    if attributes is not None:
        files["attributes"] = ("b.png", attributes, "image/png")
    return client.post("/transfer", files=files, data=data, headers=data.pop("headers", None))


def test_transfer_answers_png_with_reproducibility_headers(client, png):
    answer = post(client, png, png)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-model"] == "digits"
    assert answer.headers["x-checkpoint-sha256"] == SHA
    assert answer.content.startswith(b"\x89PNG")


def test_transfer_answers_json_when_asked(client, png):
    answer = client.post(
        "/transfer", files={"image": ("a.png", png), "attributes": ("b.png", png)}, headers=JSON
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["model"] == "digits" and body["checkpoint_sha256"] == SHA
    assert body["elapsed_ms"] == 1.5 and body["job_id"]
    assert decode_b64(body["image"]).size == (32, 32)


def test_transfer_queues_both_images_at_model_resolution_with_strength(client, jobs, png):
    post(client, images.png((300, 100)), png, strength="0.25")
    _, payload = jobs.sent[-1]
    assert payload.strength == 0.25
    assert sent_image(jobs).size == (32, 32) and sent_image(jobs, "attributes").size == (32, 32)


def test_transfer_uses_the_named_model(client, jobs, registry, png):
    registry._models["faces"] = registry._models["digits"].model_copy(
        update={"name": "faces", "resolution": 64}
    )
    assert post(client, png, png, model="faces").status_code == 200
    assert jobs.sent[-1][1].model == "faces" and sent_image(jobs).size == (64, 64)


def test_transfer_unknown_model_is_404(client, png):
    answer = post(client, png, png, model="cats")
    assert answer.status_code == 404 and "digits" in answer.json()["detail"]


def test_transfer_without_workers_is_503_with_retry_after(client, registry, png):
    registry._models.clear()
    answer = post(client, png, png)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"


@pytest.mark.parametrize(
    "data",
    [{"strength": "1.5"}, {"strength": "-0.1"}, {"strength": "strong"}, {"model": "../etc"}],
)
def test_transfer_out_of_range_or_wrong_type_field_is_422(client, png, data):
    answer = post(client, png, png, **data)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][0] == "body"


def test_transfer_missing_attributes_is_422(client, png):
    answer = post(client, png)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "attributes"]


def test_transfer_unknown_field_is_422(client, png):
    assert post(client, png, png, strenght="0.5").status_code == 422


def test_transfer_two_images_for_one_field_is_422(client, png):
    files = [("image", ("a.png", png)), ("image", ("c.png", png)), ("attributes", ("b.png", png))]
    assert client.post("/transfer", files=files).status_code == 422


def test_transfer_json_body_instead_of_multipart_is_415(client):
    answer = client.post("/transfer", json={"image": "x"})
    assert answer.status_code == 415 and "multipart" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"not an image at all", 400),
        (b"", 400),
        (images.truncated_png(), 400),
        (images.EPS, 415),
        (images.tiff(), 415),
        (images.png_header_only(2000, 2000), 413),  # over the service's cap (1 M in tests)
        (images.png_header_only(20000, 20000), 413),  # over twice Pillow's own limit
    ],
    ids=["garbage", "empty", "truncated", "eps-named-png", "tiff-named-png", "bomb", "bomb-2x"],
)
def test_transfer_bad_image_gets_its_status(client, jobs, png, data, status):
    answer = post(client, data, png, name="innocent.png")
    assert answer.status_code == status
    assert isinstance(answer.json()["detail"], str)
    assert jobs.sent == []


def test_transfer_job_failure_keeps_its_status(client, jobs, png):
    jobs.fail = JobError(422, "bad payload")
    answer = post(client, png, png)
    assert answer.status_code == 422 and answer.json() == {"detail": "bad payload"}


def test_transfer_job_time_limit_is_504(client, jobs, png):
    jobs.fail = JobError(504, "the job exceeded its time limit")
    assert post(client, png, png).status_code == 504
