import json

import numpy as np
import pytest
import torch
from PIL import Image

from model import CheckpointError, load_model
from model.checkpoint import export_inference, update_manifest
from model.domain import DomainReference, reconstruction_error
from model.networks import SRbVAE
from tests.model.conftest import images, tiny_config


def test_reconstruction_error_is_the_mean_absolute_difference_per_image():
    x = torch.zeros(2, 3, 4, 4)
    recon = torch.zeros(2, 3, 4, 4)
    recon[1, 0] = 0.6  # a third of the values off by 0.6
    assert reconstruction_error(x, recon).tolist() == pytest.approx([0.0, 0.2])


def test_percentile_places_an_error_among_the_reference_errors():
    ref = DomainReference.fit(np.arange(1, 1001) / 1000, trained_on="tests")
    errors = torch.tensor([0.0, 0.2505, 0.5, 0.995, 2.0])
    got = ref.percentile(errors)
    assert got == pytest.approx([0.0, 25.0, 50.0, 99.5, 100.0], abs=0.15)
    assert ref.out_of_domain(errors) == [False, False, False, True, True]
    # Decided on the error: just above the 99th percentile's is out, though it rounds to 99.0.
    just_above = torch.tensor([ref.quantiles[99], ref.quantiles[99] + 1e-5], dtype=torch.float64)
    assert ref.percentile(just_above) == [99.0, 99.0]
    assert ref.out_of_domain(just_above) == [False, True]


def test_the_record_round_trips_and_a_malformed_one_is_refused():
    ref = DomainReference.fit(np.random.default_rng(0).gamma(2, 0.02, 500), trained_on="faces")
    assert DomainReference.from_record(json.loads(json.dumps(ref.record()))) == ref
    assert DomainReference.from_record(None) is None
    bad = {**ref.record(), "quantiles": ref.record()["quantiles"][::-1]}  # decreasing
    with pytest.raises(ValueError, match="non-decreasing"):
        DomainReference.from_record(bad)
    with pytest.raises(ValueError, match="statistic"):
        DomainReference.from_record({**ref.record(), "statistic": "kl"})
    with pytest.raises(ValueError, match="at least 50"):
        DomainReference.fit(np.ones(10), trained_on="x")


def test_a_stored_reference_scores_pictures_and_leaves_the_weights_alone(tmp_path):
    net = SRbVAE(tiny_config())
    export_inference(net, tmp_path, name="faces", data={"source": "test"})
    weights = (tmp_path / "model.safetensors").read_bytes()
    model = load_model(tmp_path)
    assert model.domain is None
    x = images(200, 32)
    errors = model.reconstruction_error_tensor(x)
    recon = model.generate_tensor(*model.encode_tensor(x))
    assert torch.allclose(errors, (x - recon).abs().mean((1, 2, 3)))

    update_manifest(tmp_path, domain=DomainReference.fit(errors, trained_on="noise").record())
    assert (tmp_path / "model.safetensors").read_bytes() == weights
    assert (tmp_path / "model.json").stat().st_mode & 0o777 == 0o644  # workers run as other users
    model = load_model(tmp_path)  # the checksum still holds
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8))
    flat = Image.new("RGB", (32, 32), (0, 0, 0))  # far from uniform noise: a large error
    inside, outside = model.domain_percentiles([noise, flat])
    assert 1.0 < inside < 99.0 and outside == 100.0


def test_a_malformed_domain_record_refuses_the_checkpoint(tmp_path):
    export_inference(SRbVAE(tiny_config()), tmp_path, name="faces", data={"source": "test"})
    update_manifest(tmp_path, domain={"statistic": "reconstruction_mae", "quantiles": [1.0]})
    with pytest.raises(CheckpointError, match="domain"):
        load_model(tmp_path)
