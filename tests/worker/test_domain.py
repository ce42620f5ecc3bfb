"""The domain check through a real Redis and worker: every answer scores its input images
against the held-out errors a checkpoint stores (model/domain.py)."""

from __future__ import annotations

import numpy as np
import pytest

from contract.tasks import TaskName
from model import load_model
from model.checkpoint import update_manifest
from model.domain import DomainReference
from model.images import uint8_to_tensor
from tests.utils.checkpoints import make_model_dir
from tests.worker.conftest import RESOLUTION, assert_same_images, png_b64, random_png
from tests.worker.test_tasks import pil, run

FLAT = png_b64(np.zeros((RESOLUTION, RESOLUTION, 3), np.uint8))  # black: far from the noise


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """faces stores a reference fitted on uniform noise (what random_png draws); digits none."""
    root = make_model_dir(tmp_path_factory.mktemp("models"))
    faces = load_model(root / "faces")
    rng = np.random.default_rng(100)
    noise = rng.integers(0, 256, (300, RESOLUTION, RESOLUTION, 3), dtype=np.uint8)
    errors = faces.reconstruction_error_tensor(uint8_to_tensor(noise))
    update_manifest(root / "faces", domain=DomainReference.fit(errors, trained_on="noise").record())
    return root


@pytest.fixture(scope="module", autouse=True)
def _worker(worker):
    return worker


def test_transfer_scores_both_inputs_as_the_model_in_process_does(client, models):
    a = random_png(1)
    result = run(client, TaskName.TRANSFER, model="faces", image=a, attributes=FLAT)
    domain = result["domain"]
    assert domain["inputs"] == ["image", "attributes"]
    want = models["faces"].domain_percentiles([pil(a), pil(FLAT)])
    assert domain["percentiles"] == pytest.approx(want, abs=0.2)
    assert 0 < domain["percentiles"][0] < 99 and domain["percentiles"][1] == 100.0
    assert domain["out_of_domain"] == [False, True]
    assert (domain["threshold"], domain["trained_on"]) == (99.0, "noise")
    # The reconstructions shared the edit's generate pass: the edit is still the edit.
    assert_same_images(result["images"], [models["faces"].transfer(pil(a), pil(FLAT))])


def test_sample_interpolate_and_encode_score_their_inputs(client, models):
    a, b = random_png(2), random_png(3)
    sample = run(client, TaskName.SAMPLE, model="faces", image=FLAT, n=3, seed=5)
    assert len(sample["images"]) == 3
    assert sample["domain"]["inputs"] == ["image"] and sample["domain"]["out_of_domain"] == [True]
    assert_same_images(sample["images"], models["faces"].sample(pil(FLAT), n=3, seed=5))
    path = run(client, TaskName.INTERPOLATE, model="faces", a=a, b=b, steps=4)
    assert len(path["images"]) == 4 and path["domain"]["inputs"] == ["a", "b"]
    encoded = run(client, TaskName.ENCODE, model="faces", images=[a, FLAT, b])
    assert encoded["domain"]["inputs"] == ["images[0]", "images[1]", "images[2]"]
    assert encoded["domain"]["out_of_domain"] == [False, True, False]


def test_no_domain_without_an_input_image_or_a_stored_reference(client, models):
    z = np.zeros((1, models["faces"].z_dim)).tolist()
    assert run(client, TaskName.GENERATE, model="faces", z=z)["domain"] is None
    plain = run(client, TaskName.NEUTRALIZE, model="digits", image=random_png(4))
    assert plain["domain"] is None
