"""The picture routes (service/api/routes/images.py): transfer, sample, neutralize, interpolate,
against a fake job queue and fake workers."""

from __future__ import annotations

import io

import pytest
from PIL import Image

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


def test_transfer_uses_the_named_model(client, jobs, workers, png):
    workers._models["faces"] = workers._models["digits"].model_copy(
        update={"name": "faces", "resolution": 64}
    )
    assert post(client, png, png, model="faces").status_code == 200
    assert jobs.sent[-1][1].model == "faces" and sent_image(jobs).size == (64, 64)


def test_transfer_unknown_model_is_404(client, png):
    answer = post(client, png, png, model="cats")
    assert answer.status_code == 404 and "digits" in answer.json()["detail"]


def test_transfer_without_workers_is_503_with_retry_after(client, workers, png):
    workers._models.clear()
    answer = post(client, png, png)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"


def test_every_edit_route_passes_the_rendering_asked_for(client, jobs, png):
    answer = post(client, png, png, render="input")
    assert jobs.sent[-1][1].render == "input"
    assert answer.headers["x-rendering"] == "input"  # as the worker reports it
    as_json = client.post(
        "/transfer", files={"image": ("a.png", png), "attributes": ("b.png", png)}, headers=JSON
    )
    assert as_json.json()["rendering"] == "generator"
    post(client, png, png)
    assert jobs.sent[-1][1].render is None  # the model's default, which the worker knows
    for route, files in (
        ("/sample", {"image": ("a.png", png)}),
        ("/neutralize", {"image": ("a.png", png)}),
        ("/interpolate", {"a": ("a.png", png), "b": ("b.png", png)}),
    ):
        assert client.post(route, files=files, data={"render": "generator"}).status_code == 200
        assert jobs.sent[-1][1].render == "generator"


@pytest.mark.parametrize(
    "data",
    [
        {"strength": "1.5"},
        {"strength": "-0.1"},
        {"strength": "strong"},
        {"model": "../etc"},
        {"render": "pixels"},
    ],
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


# --- /sample ---------------------------------------------------------------------------------


def test_sample_answers_one_png_strip_with_its_seed(client, png):
    answer = client.post("/sample", files={"image": ("a.png", png)}, data={"n": "3", "seed": "7"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.headers["x-seed"] == "7"
    assert Image.open(io.BytesIO(answer.content)).size == (3 * 32, 32)


def test_sample_json_lists_images_and_seed(client, jobs, png):
    data = {"n": "4", "seed": "11", "temperature": "0.5"}
    answer = client.post("/sample", files={"image": ("a.png", png)}, data=data, headers=JSON)
    body = answer.json()
    assert len(body["images"]) == 4 and body["seed"] == 11
    payload = jobs.sent[-1][1]
    assert (payload.n, payload.seed, payload.temperature) == (4, 11, 0.5)


def test_sample_draws_and_reports_a_seed_when_none_is_given(client, jobs, png):
    answer = client.post("/sample", files={"image": ("a.png", png)}, data={"seed": ""})
    assert answer.status_code == 200
    assert int(answer.headers["x-seed"]) == jobs.sent[-1][1].seed


@pytest.mark.parametrize(
    "data",
    [{"n": "0"}, {"n": "65"}, {"n": "two"}, {"temperature": "0"}, {"temperature": "11"},
     {"seed": "-1"}, {"seed": str(2**63)}, {"seed": "1.5"}],
)  # fmt: skip
def test_sample_out_of_range_field_is_422(client, jobs, png, data):
    answer = client.post("/sample", files={"image": ("a.png", png)}, data=data)
    assert answer.status_code == 422 and jobs.sent == []


def test_sample_missing_image_is_422(client):
    answer = client.post("/sample", data={"n": "2"}, files={"other": ("a.png", b"x")})
    assert answer.status_code == 422


# --- /neutralize -----------------------------------------------------------------------------


def test_neutralize_answers_png_with_reproducibility_headers(client, jobs, png):
    answer = client.post("/neutralize", files={"image": ("a.png", images.png((300, 100)))})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.headers["x-model"] == "digits" and answer.headers["x-checkpoint-sha256"] == SHA
    assert "x-seed" not in answer.headers
    task, payload = jobs.sent[-1]
    assert task == "srbvae.neutralize" and payload.model == "digits"
    assert sent_image(jobs).size == (32, 32)


def test_neutralize_answers_json_when_asked(client, png):
    answer = client.post("/neutralize", files={"image": ("a.png", png)}, headers=JSON)
    body = answer.json()
    assert answer.status_code == 200 and body["seed"] is None and body["job_id"]
    assert decode_b64(body["image"]).size == (32, 32)


def test_neutralize_missing_image_is_422(client, jobs):
    answer = client.post("/neutralize", data={"model": "digits"})
    assert answer.status_code == 422 and jobs.sent == []


def test_neutralize_bad_image_is_400(client, jobs):
    answer = client.post("/neutralize", files={"image": ("a.png", b"not an image")})
    assert answer.status_code == 400 and jobs.sent == []


def test_neutralize_async_job_reports_its_kind(client, png):
    job = client.post("/neutralize?async=true", files={"image": ("a.png", png)}).json()
    status = client.get(job["status_url"]).json()
    assert status["kind"] == "neutralize" and status["result"]["image"]


# --- /interpolate ----------------------------------------------------------------------------


def interpolate(client, png, **data):
    files = {"a": ("a.png", png), "b": ("b.png", images.png((40, 40), (200, 10, 10)))}
    return client.post("/interpolate", files=files, data=data, headers=data.pop("headers", None))


def test_interpolate_answers_one_png_strip_of_the_steps(client, jobs, png):
    answer = interpolate(client, png, steps="5")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (5 * 32, 32)
    task, payload = jobs.sent[-1]
    assert task == "srbvae.interpolate" and payload.steps == 5
    assert sent_image(jobs, "a").size == sent_image(jobs, "b").size == (32, 32)


def test_interpolate_json_lists_the_steps(client, png):
    answer = interpolate(client, png, headers=JSON)
    body = answer.json()
    assert answer.status_code == 200 and len(body["images"]) == 8  # the default steps
    assert body["model"] == "digits" and body["checkpoint_sha256"] == SHA


@pytest.mark.parametrize("steps", ["1", "65", "many"])
def test_interpolate_out_of_range_steps_is_422(client, jobs, png, steps):
    assert interpolate(client, png, steps=steps).status_code == 422
    assert jobs.sent == []


def test_interpolate_missing_b_is_422(client, png):
    answer = client.post("/interpolate", files={"a": ("a.png", png)})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "b"]
