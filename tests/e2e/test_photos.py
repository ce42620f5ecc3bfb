"""Photos through the real stack (uvicorn, Redis, a worker) for the faces model: the face is
found, aligned, edited and pasted back, and the answer is the upload's photo with only the face
changed. scikit-image's astronaut and a rendered face composited into a larger scene."""

from __future__ import annotations

import base64
import io
import time

import httpx
import numpy as np
import pytest
import redis
from PIL import Image, ImageFilter

from photos import photo_mask
from photos.align import face_matrix
from photos.detect import Face
from tests.utils import images
from tests.utils import photo_uploads as uploads
from tests.utils.api_process import running_api

JSON = {"Accept": "application/json"}
RESOLUTION = 32  # of the test checkpoints
ZOOM = 1.8  # tests.utils.checkpoints.FACES_DATA


@pytest.fixture(scope="module")
def photo_api(stack, tmp_path_factory):
    """The stack's Redis and worker behind an API whose limits take a 512x512 PNG (the e2e
    API's 128 KiB uploads are for crossing limits) and whose default is the faces model."""
    root = tmp_path_factory.mktemp("photo-api")
    with (
        running_api(
            stack["redis"].url,
            root,
            model_dir=stack["models"],
            job_timeout_s=60,
            default_model="faces",
        ) as api,  # fmt: skip
        httpx.Client(base_url=api.url, timeout=90) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def astronaut():
    return uploads.astronaut_photo()


@pytest.fixture(scope="module")
def scene():
    return uploads.one_face_scene().image


def post(api, route: str, image: bytes, name: str = "photo.png", headers=None, **data):
    files = {"image": (name, image)}
    if route == "/transfer":
        files["attributes"] = ("smile.png", data.pop("attributes"))
    return api.post(route, files=files, data=data, headers=headers)


def face_mask(body: dict, shape: tuple[int, ...], field: str = "image") -> np.ndarray:
    """(H, W) float: the paste's mask for the face the answer says it used (photos.paste)."""
    found = body["photos"][field]
    face = found["faces"][found["used"]]
    used = Face(tuple(face["box"]), tuple(face["left_eye"]), tuple(face["right_eye"]), True)
    return photo_mask(shape, face_matrix(used, RESOLUTION, ZOOM), RESOLUTION)


def assert_only_the_face_changed(answer: np.ndarray, photo: np.ndarray, mask: np.ndarray):
    """Unchanged bit for bit outside the face's mask (grown by 2 pixels: the answer's eyes are
    rounded to 0.1 pixel); changed where the mask is full."""
    assert answer.shape == photo.shape
    outside = ~np.asarray(Image.fromarray(mask > 0).filter(ImageFilter.MaxFilter(5)), bool)
    assert np.array_equal(answer[outside], photo[outside]), "pixels outside the face changed"
    diff = np.abs(answer.astype(int) - photo.astype(int)).sum(axis=2)[mask > 0.9]
    assert (diff > 0).mean() > 0.8 and diff.mean() > 10, "the face barely changed"


@pytest.mark.parametrize("which, other", [("astronaut", "scene"), ("scene", "astronaut")])
def test_transfer_answers_the_photo_with_only_the_face_changed(photo_api, request, which, other):
    photo, attributes = request.getfixturevalue(which), request.getfixturevalue(other)
    answer = post(photo_api, "/transfer", uploads.encode(photo),
                  attributes=uploads.encode(attributes), headers=JSON)  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["media_type"] == "image/png" and body["model"] == "faces"
    assert set(body["photos"]) == {"image", "attributes"}  # e read from the attributes' face
    assert (body["photos"]["image"]["width"], body["photos"]["image"]["height"]) == (
        photo.shape[1], photo.shape[0])  # fmt: skip
    edited = uploads.decode(base64.b64decode(body["image"]))
    assert_only_the_face_changed(edited, photo, face_mask(body, photo.shape))


def test_a_photo_takes_the_expression_of_an_example_at_the_models_resolution(photo_api, stack):
    example = (stack["models"] / "faces" / "examples" / "happiness.png").read_bytes()
    scene = uploads.one_face_scene().image
    answer = post(photo_api, "/transfer", uploads.encode(scene), attributes=example,
                  headers=JSON)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["photos"]) == {"image"}


def test_the_png_answer_is_the_photo_at_its_size_with_the_reproducibility_headers(
    photo_api, astronaut
):
    answer = post(photo_api, "/neutralize", uploads.encode(astronaut))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-model"] == "faces" and answer.headers["x-checkpoint-sha256"]
    assert Image.open(io.BytesIO(answer.content)).size == (512, 512)


def test_an_exif_rotated_jpeg_answers_upright_as_jpeg(photo_api, scene):
    upload = uploads.encode(scene, "JPEG", orientation=6)  # stored 360 wide, 480 high
    assert Image.open(io.BytesIO(upload)).size == (360, 480)
    answer = post(photo_api, "/neutralize", upload, name="phone.jpg")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    shown = uploads.decode(answer.content)
    assert shown.shape == scene.shape  # 480 wide, 360 high: as displayed
    # JPEG twice over (the upload, the answer): the photo is still the photo away from the face.
    corner = np.abs(shown[:60, :60].astype(int) - scene[:60, :60].astype(int)).mean()
    assert corner < 4


def test_a_photo_with_no_face_is_422_naming_the_upload(photo_api, scene):
    answer = post(photo_api, "/transfer", uploads.encode(scene), attributes=uploads.encode(
        uploads.no_face()))  # fmt: skip
    assert answer.status_code == 422
    assert answer.json()["detail"] == "no face was found in the photo uploaded as 'attributes'"


def test_output_face_answers_the_edited_aligned_crop(photo_api, astronaut):
    answer = post(photo_api, "/neutralize", uploads.encode(astronaut), output="face")
    assert answer.status_code == 200, answer.text
    assert Image.open(io.BytesIO(answer.content)).size == (RESOLUTION, RESOLUTION)


def test_json_lists_the_faces_found_and_the_index_chooses_one(photo_api):
    two = uploads.two_face_scene().image
    answers = [
        post(photo_api, "/neutralize", uploads.encode(two), headers=JSON, face=str(i)).json()
        for i in (0, 1)
    ]
    first, second = (a["photos"]["image"] for a in answers)
    assert len(first["faces"]) == 2 and first["faces"] == second["faces"]
    assert (first["used"], second["used"]) == (0, 1)
    assert (first["width"], first["height"]) == (560, 360)
    area = [f["box"][2] * f["box"][3] for f in first["faces"]]
    assert area[0] >= area[1]  # largest first
    for body in answers:  # each edits its own face and leaves the other alone
        edited = uploads.decode(base64.b64decode(body["image"]))
        assert_only_the_face_changed(edited, two, face_mask(body, two.shape))
    missing = post(photo_api, "/neutralize", uploads.encode(two), face="2")
    assert missing.status_code == 422 and "2 were found" in missing.json()["detail"]
    x, y, w, h = first["faces"][1]["box"]
    boxed = post(photo_api, "/neutralize", uploads.encode(two), headers=JSON,
                 face_box=f"{x + 10},{y + 10},{w / 2},{h / 2}")  # fmt: skip
    assert boxed.json()["photos"]["image"]["used"] == 1
    empty = post(photo_api, "/neutralize", uploads.encode(two), face_box="0,0,5,5")
    assert empty.status_code == 422 and "inside the box" in empty.json()["detail"]


def test_sample_pastes_each_variation_into_the_photo_side_by_side(photo_api, scene):
    answer = post(photo_api, "/sample", uploads.encode(scene), n="3", seed="4")
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-seed"] == "4"
    strip = uploads.decode(answer.content)
    assert strip.shape == (360, 3 * 480, 3)
    frames = [strip[:, 480 * i : 480 * (i + 1)] for i in range(3)]
    assert not np.array_equal(frames[0], frames[1])
    assert np.array_equal(frames[0][:40, :40], scene[:40, :40])  # a corner far from the face


def test_a_picture_at_the_models_resolution_is_taken_as_aligned(photo_api, stack):
    example = (stack["models"] / "faces" / "examples" / "happiness.png").read_bytes()
    answer = post(photo_api, "/neutralize", example, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["photos"] == {}  # no face search: as before photos
    assert uploads.decode(base64.b64decode(answer.json()["image"])).shape == (32, 32, 3)


def test_digits_take_any_picture_without_a_face(photo_api):
    answer = post(photo_api, "/neutralize", images.png((300, 200)), model="digits")
    assert answer.status_code == 200, answer.text
    assert Image.open(io.BytesIO(answer.content)).size == (32, 32)


def test_an_async_photo_job_keeps_its_photo_until_a_worker_takes_it(photo_api, stack, scene):
    accepted = post(photo_api, "/neutralize?async=true", uploads.encode(scene))
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 60
    while (status := photo_api.get(accepted.json()["status_url"]).json())["status"] in (
        "queued", "running"):  # fmt: skip
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["status"] == "succeeded", status
    result = status["result"]
    assert result["photos"]["image"]["width"] == 480
    assert uploads.decode(base64.b64decode(result["image"])).shape == scene.shape
    store = redis.Redis.from_url(stack["redis"].url)
    assert not store.keys("srbvae:photo:*")  # stored beside the job, deleted by the worker
    store.close()
