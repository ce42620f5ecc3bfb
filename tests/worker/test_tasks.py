"""Every task through a real Redis and a real worker process, against the in-process model."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import redis
from PIL import Image

from contract.errors import InvalidPayload, UnknownModel
from contract.tasks import (
    PHOTO_KEY_PREFIX,
    PHOTO_PREFIX,
    PHOTO_REF_PREFIX,
    RAW_RGB_PREFIX,
    RESULTS,
    TaskName,
)
from model.target_prior import TargetPrior
from tests.utils import photo_uploads
from tests.utils.worker_process import read_workers
from tests.worker.conftest import (
    RESOLUTION,
    assert_same_images,
    decode,
    png_b64,
    random_png,
)

TIMEOUT = 30


def run(client, name: TaskName, **kwargs) -> dict:
    result = client.send_task(str(name), kwargs=kwargs).get(timeout=TIMEOUT)
    RESULTS[name].model_validate(result)  # the answer has the contract's shape
    return result


def pil(b64: str) -> Image.Image:
    return Image.fromarray(decode(b64).astype(np.uint8))


@pytest.fixture(scope="module", autouse=True)
def _worker(worker):
    return worker


def test_encode_round_trip(client, models):
    images = [random_png(i) for i in range(3)]
    result = run(client, TaskName.ENCODE, model="faces", images=images)
    z, e = models["faces"].encode([pil(b) for b in images])
    np.testing.assert_allclose(result["z"], z.numpy(), atol=1e-5)
    np.testing.assert_allclose(result["e"], e.numpy(), atol=1e-5)
    assert result["model"] == "faces"
    assert result["checkpoint_sha256"] == models["faces"].manifest["weights"]["sha256"]


def test_generate_round_trip_with_and_without_e(client, models):
    m = models["digits"]
    z = np.random.default_rng(0).normal(size=(2, m.z_dim)).tolist()
    e = np.random.default_rng(1).normal(size=(2, m.e_dim)).tolist()
    with_e = run(client, TaskName.GENERATE, model="digits", z=z, e=e)
    assert_same_images(with_e["images"], m.generate(z, e))
    reference = run(client, TaskName.GENERATE, model="digits", z=z, e=None)
    assert_same_images(reference["images"], m.generate(z))


def test_transfer_round_trip(client, models):
    a, b = random_png(10), random_png(11)
    result = run(client, TaskName.TRANSFER, model="faces", image=a, attributes=b, strength=0.5)
    assert_same_images(result["images"], [models["faces"].transfer(pil(a), pil(b), 0.5)])


def test_transfer_renders_onto_the_input_when_asked(client, models):
    a, b = random_png(12), random_png(13)
    for render in ("input", "generator"):
        result = run(client, TaskName.TRANSFER, model="faces", image=a, attributes=b, render=render)
        want = models["faces"].transfer(pil(a), pil(b), render=render)
        assert_same_images(result["images"], [want])
        assert result["rendering"] == render  # the answer says how it was rendered
    default = run(client, TaskName.TRANSFER, model="faces", image=a, attributes=b)
    assert default["rendering"] == models["faces"].rendering.mode == "generator"
    z = np.zeros((1, models["faces"].z_dim)).tolist()
    assert run(client, TaskName.GENERATE, model="faces", z=z)["rendering"] is None  # no input
    # An edit that changes nothing answers the input itself.
    kept = run(client, TaskName.TRANSFER, model="faces", image=a, attributes=b, strength=0.0,
               render="input")  # fmt: skip
    assert np.array_equal(decode(kept["images"][0]), decode(a))


@pytest.mark.parametrize(
    "task, kwargs, edit",
    [
        (TaskName.SAMPLE, {"n": 3, "seed": 5}, lambda m, a: m.sample(a, 3, 5, render="input")),
        (TaskName.NEUTRALIZE, {}, lambda m, a: [m.neutralize(a, render="input")]),
    ],
    ids=["sample", "neutralize"],
)
def test_edits_of_one_picture_render_onto_it(client, models, task, kwargs, edit):
    image = random_png(14)
    result = run(client, task, model="faces", image=image, render="input", **kwargs)
    assert_same_images(result["images"], edit(models["faces"], pil(image)))


def test_interpolation_renders_onto_its_first_picture(client, models):
    a, b = random_png(42), random_png(43)
    result = run(client, TaskName.INTERPOLATE, model="faces", a=a, b=b, steps=3, render="input")
    assert_same_images(result["images"], models["faces"].interpolate(pil(a), pil(b), 3, "input"))


def test_a_result_is_stored_as_celerys_backend_stores_it(client, redis_server):
    """The worker stores successes itself (worker/tracker.py): the same key and value that
    Celery's backend decodes, with the results' expiry, published on the key's channel."""
    r = redis.Redis.from_url(redis_server.url)
    pubsub = r.pubsub()
    pubsub.psubscribe("celery-task-meta-*")
    assert pubsub.get_message(timeout=5)["type"] == "psubscribe"
    job = client.send_task(
        str(TaskName.NEUTRALIZE), kwargs=dict(model="digits", image=random_png(0))
    )
    assert job.get(timeout=TIMEOUT)["model"] == "digits"
    key = client.backend.get_key_for_task(job.id)
    meta = client.backend.decode(r.get(key))
    assert meta["status"] == "SUCCESS" and meta["task_id"] == job.id
    assert meta["result"]["model"] == "digits" and meta["date_done"]
    assert 3500 < r.ttl(key) <= 3600  # SRBVAE_WORKER_RESULT_EXPIRES's default
    published = pubsub.get_message(timeout=5)
    assert published["channel"] == key and published["data"] == r.get(key)
    pubsub.close()


def test_transfer_takes_raw_pixels_as_the_api_sends_them(client, models):
    a, b = random_png(12), random_png(13)
    as_png = run(client, TaskName.TRANSFER, model="faces", image=a, attributes=b)
    as_raw = run(client, TaskName.TRANSFER, model="faces", image=raw_rgb(a), attributes=raw_rgb(b))
    assert as_raw["images"] == as_png["images"]


def raw_rgb(png: str) -> str:
    pixels = decode(png).astype(np.uint8).tobytes()
    return RAW_RGB_PREFIX + base64.b64encode(pixels).decode()


def test_sample_round_trip_uses_the_seed(client, models):
    image = random_png(20)
    result = run(client, TaskName.SAMPLE, model="faces", image=image, n=5, seed=7)
    assert result["seed"] == 7
    want = models["faces"].sample(pil(image), n=5, seed=7)
    assert_same_images(result["images"], want)


def test_sample_without_seed_reports_the_seed_it_used(client, models):
    image = random_png(21)
    result = run(client, TaskName.SAMPLE, model="digits", image=image, n=3)
    want = models["digits"].sample(pil(image), n=3, seed=result["seed"])
    assert_same_images(result["images"], want)


def test_sample_draws_e_from_the_checkpoints_fitted_gaussian(client, models):
    image = random_png(23)
    result = run(client, TaskName.SAMPLE, model="digits", image=image, n=4, seed=5)
    fitted = models["digits"]
    assert fitted.prior.fitted_on == 64
    assert_same_images(result["images"], fitted.sample(pil(image), n=4, seed=5))
    fitted.prior, kept = TargetPrior.standard(fitted.e_dim), fitted.prior
    try:  # the same seed under N(0, I) gives other images: the fit is what the worker used
        standard = fitted.sample(pil(image), n=4, seed=5)
    finally:
        fitted.prior = kept
    diffs = [
        np.abs(decode(g) - np.asarray(w, np.int16)).max()
        for g, w in zip(result["images"], standard, strict=True)
    ]
    assert max(diffs) > 1


def test_sample_twice_with_one_seed_gives_the_same_images(client):
    image = random_png(22)
    first = run(client, TaskName.SAMPLE, model="digits", image=image, n=4, seed=123)
    second = run(client, TaskName.SAMPLE, model="digits", image=image, n=4, seed=123)
    assert first["images"] == second["images"]


def test_neutralize_round_trip(client, models):
    image = random_png(30)
    result = run(client, TaskName.NEUTRALIZE, model="digits", image=image)
    assert_same_images(result["images"], [models["digits"].neutralize(pil(image))])


def test_interpolate_round_trip(client, models):
    a, b = random_png(40), random_png(41)
    result = run(client, TaskName.INTERPOLATE, model="faces", a=a, b=b, steps=4)
    assert_same_images(result["images"], models["faces"].interpolate(pil(a), pil(b), 4))


def test_concurrent_jobs_are_batched_and_each_gets_its_own_answer(client, models):
    images = [random_png(100 + i) for i in range(12)]
    pending = [
        client.send_task(str(TaskName.SAMPLE), kwargs=dict(model="faces", image=im, n=2, seed=i))
        for i, im in enumerate(images)
    ]
    for i, (im, p) in enumerate(zip(images, pending, strict=True)):
        result = p.get(timeout=TIMEOUT)
        assert_same_images(result["images"], models["faces"].sample(pil(im), n=2, seed=i))


def test_unknown_model_fails_with_unknown_model(client):
    with pytest.raises(UnknownModel, match="no model named 'celebs'"):
        run(client, TaskName.NEUTRALIZE, model="celebs", image=random_png(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(model="digits", image="not base64!"), "image: not valid base64"),
        (dict(model="digits", image=png_b64(np.zeros((8, 8, 3), np.uint8))), "8x8 image"),
        (dict(model="digits", image="R0lGODlhAQABAAAAACw="), "image: not a PNG"),
        (dict(model="digits", image="iVBORw0KGgoAAAANSUhEUgAAACAAAAAg"), "undecodable"),
        (dict(model="digits"), "image: Field required"),
        (dict(model="digits", image=random_png(0), colour="red"), "colour: Extra inputs"),
    ],
    ids=["base64", "size", "gif", "truncated", "missing", "extra"],
)
def test_malformed_payload_fails_with_invalid_payload(client, kwargs, message):
    with pytest.raises(InvalidPayload, match=message):
        run(client, TaskName.NEUTRALIZE, **kwargs)


def test_a_photo_stored_beside_its_job_is_edited_then_deleted(client, redis_server):
    store = redis.Redis.from_url(redis_server.url)
    key = PHOTO_KEY_PREFIX + "test-astronaut"
    store.set(key, photo_uploads.encode(photo_uploads.astronaut_photo(), "JPEG"), ex=60)
    result = run(client, TaskName.NEUTRALIZE, model="faces", image=PHOTO_REF_PREFIX + key)
    assert result["media_type"] == "image/jpeg"
    assert (result["photos"]["image"]["width"], result["photos"]["image"]["height"]) == (512, 512)
    assert not store.exists(key)
    with pytest.raises(InvalidPayload, match="the photo is no longer stored"):
        run(client, TaskName.NEUTRALIZE, model="faces", image=PHOTO_REF_PREFIX + key)
    with pytest.raises(InvalidPayload, match="must start with 'srbvae:photo:'"):
        run(client, TaskName.NEUTRALIZE, model="faces", image=PHOTO_REF_PREFIX + "srbvae:workers")
    store.close()


def test_digits_take_no_photos(client):
    with pytest.raises(InvalidPayload, match="takes pictures at its own framing, not photos"):
        run(client, TaskName.NEUTRALIZE, model="digits", image=PHOTO_PREFIX + "aGVsbG8=")


def test_latents_of_the_wrong_width_fail_with_invalid_payload(client):
    with pytest.raises(InvalidPayload, match=r"z: every row must have 8 values"):
        run(client, TaskName.GENERATE, model="digits", z=[[0.0] * 3])


def test_positional_arguments_fail_with_invalid_payload(client):
    pending = client.send_task(str(TaskName.NEUTRALIZE), args=["digits", random_png(0)])
    with pytest.raises(InvalidPayload, match="keyword arguments"):
        pending.get(timeout=TIMEOUT)


def test_worker_announces_its_models_and_limits(redis_server, worker, models):
    client = redis.Redis.from_url(redis_server.url)
    (info,) = [w for w in read_workers(client) if w.worker_id == worker.info.worker_id]
    client.close()
    assert info.consuming and info.device == "cpu"
    assert set(info.models) == {"digits", "faces"}
    faces = info.models["faces"]
    assert (faces.resolution, faces.z_dim, faces.e_dim) == (RESOLUTION, 8, 4)
    assert faces.variant == "srbvae" and faces.method == "sRb-VAE"
    assert faces.checkpoint_sha256 == models["faces"].manifest["weights"]["sha256"]
    assert faces.card["data"]["source"] == "faces" and faces.face_zoom == 1.8
    assert info.models["digits"].face_zoom is None  # digits take no photos
    assert info.models["digits"].card["sampling"]["images"] == 64 and "sampling" not in faces.card
    assert info.visibility_timeout == 60 > info.hard_time_limit == 30


def test_the_worker_reports_the_forward_passes_it_ran(client):
    def passes() -> dict:
        (reply,) = client.control.inspect(timeout=5)._request("device_passes").values()
        return reply

    before = passes()
    run(client, TaskName.TRANSFER, model="digits", image=random_png(0), attributes=random_png(1))
    after = passes()
    # One transfer alone: image and attributes encoded in one pass, one image generated.
    assert after["encode"]["2"] == before.get("encode", {}).get("2", 0) + 1
    assert after["generate"]["1"] == before.get("generate", {}).get("1", 0) + 1
