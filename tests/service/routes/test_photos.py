"""Photos through the picture routes, against fake workers: for a faces model an upload that is
not at the model's resolution is forwarded as uploaded, stored beside the job and named by key
(contract.tasks.PHOTO_REF_PREFIX), checked from its header only; everything else is prepared
as before."""

from __future__ import annotations

import pytest

from contract.tasks import PHOTO_KEY_PREFIX, PHOTO_REF_PREFIX, RAW_RGB_PREFIX
from tests.service.fakes import model_info
from tests.utils import images


@pytest.fixture
def faces(workers):
    workers._models["faces"] = model_info("faces").model_copy(update={"face_zoom": 1.8})
    return "faces"


def post(client, route: str, image: bytes, attributes: bytes | None = None, **data):
    files = {"image": ("photo.jpg", image)}
    if attributes is not None:
        files["attributes"] = ("b.png", attributes)
    return client.post(route, files=files, data=data)


def sent(jobs, field: str = "image") -> str:
    return getattr(jobs.sent[-1][1], field)


def test_a_photo_for_a_faces_model_is_forwarded_as_uploaded(client, jobs, faces):
    photo = images.encode(images.halves((300, 200), (200, 150, 120), (90, 60, 40)), "JPEG")
    answer = post(client, "/transfer", photo, images.png((32, 32)), model=faces,
                  face="1", attributes_face="2", output="face")  # fmt: skip
    assert answer.status_code == 200
    key = sent(jobs).removeprefix(PHOTO_REF_PREFIX)
    assert key.startswith(PHOTO_KEY_PREFIX) and jobs.photos[key] == photo
    assert sent(jobs, "attributes").startswith(RAW_RGB_PREFIX)  # at the model's resolution
    payload = jobs.sent[-1][1]
    assert (payload.face, payload.attributes_face, payload.output) == (1, 2, "face")


def test_the_answer_has_the_workers_media_type(client, faces):
    photo = images.encode(images.halves((300, 200), (200, 150, 120), (90, 60, 40)), "JPEG")
    answer = post(client, "/neutralize", photo, model=faces)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.content == photo  # the fake worker echoes it


@pytest.mark.parametrize("route", ["/sample", "/neutralize"])
def test_sample_and_neutralize_forward_photos_too(client, jobs, faces, route):
    post(client, route, images.png((64, 48)), model=faces, face="3")
    assert sent(jobs).startswith(PHOTO_REF_PREFIX) and jobs.sent[-1][1].face == 3


def test_an_upload_at_the_models_resolution_is_prepared_as_before(client, jobs, faces):
    post(client, "/neutralize", images.png((32, 32)), model=faces)
    assert sent(jobs).startswith(RAW_RGB_PREFIX)


def test_a_photo_for_digits_is_fitted_as_before(client, jobs, faces):
    post(client, "/neutralize", images.png((300, 200)))  # the default, digits: no face_zoom
    assert sent(jobs).startswith(RAW_RGB_PREFIX)


def test_interpolate_takes_no_photos(client, jobs, faces):
    files = {"a": ("a.png", images.png((300, 200))), "b": ("b.png", images.png((64, 64)))}
    client.post("/interpolate", files=files, data={"model": faces})
    assert sent(jobs, "a").startswith(RAW_RGB_PREFIX) and sent(jobs, "b").startswith(RAW_RGB_PREFIX)


def test_a_photo_over_the_pixel_limit_is_413_from_its_header(client, jobs, faces):
    answer = post(client, "/neutralize", images.png_header_only(2000, 1000), model=faces)
    assert answer.status_code == 413 and "image ('photo.jpg')" in answer.json()["detail"]
    assert not jobs.sent


@pytest.mark.parametrize(
    "data, status", [(b"not an image at all", 400), (images.tiff(), 415), (b"", 400)]
)
def test_a_photo_that_is_no_allowed_image_is_refused(client, jobs, faces, data, status):
    answer = post(client, "/transfer", data, images.png((32, 32)), model=faces)
    assert answer.status_code == status and answer.json()["detail"].startswith("image")
    assert not jobs.sent


def test_a_face_box_is_forwarded_as_four_numbers(client, jobs, faces):
    post(client, "/transfer", images.png((64, 48)), images.png((64, 48)), model=faces,
         face_box="10, 20.5,30,40", attributes_face_box="1,2,3,4")  # fmt: skip
    payload = jobs.sent[-1][1]
    assert payload.face_box == (10, 20.5, 30, 40) and payload.attributes_face_box == (1, 2, 3, 4)


@pytest.mark.parametrize(
    "field",
    [
        {"output": "crop"},
        {"face": "-1"},
        {"face": "x"},
        {"face_box": "1,2,3"},
        {"face_box": "1,2,0,4"},
        {"face_box": "1,2,3,nan"},
    ],  # fmt: skip
)
def test_bad_photo_fields_are_422(client, faces, field):
    answer = post(client, "/neutralize", images.png((64, 48)), model=faces, **field)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][:2] == ["body", next(iter(field))]


def test_a_photo_request_holds_no_memory_budget_once_its_job_is_queued(client, jobs, faces):
    budget, seen, wait = client.app.state.budget, [], jobs.wait

    async def watching(watch, record, timeout_s):
        seen.append(budget.used)  # the photo is in Redis: the request holds none of it
        return await wait(watch, record, timeout_s)

    jobs.wait = watching
    answer = post(client, "/neutralize", images.png((300, 200)), model=faces)
    assert answer.status_code == 200 and seen == [0]
