import json

import numpy as np
import torch

from model.checkpoint import attach_target_prior, export_inference, update_manifest
from model.domain import DomainReference
from model.networks import SRbVAE
from model.target_prior import TargetPrior
from tests.model.conftest import tiny_config
from training.card import DOMAIN_BULLET, write_card


def _result(e_average: float) -> dict:
    features = {k: {"average": e_average} for k in ("e", "z", "all")}
    return {"probes": {"task": "mae", "features": features}, "seconds": 1.0}


def test_a_card_written_again_keeps_hand_written_sections_and_renews_its_own(tmp_path):
    export_inference(SRbVAE(tiny_config()), tmp_path, name="tiny", training={"step": 5})
    card = write_card(tmp_path, _result(0.5), "| first table |")
    card.write_text(
        card.read_text()
        + "\n## Pictures\n\n![samples](samples.png)\n\n## Status (read before relying on it)\n\n"
        "Trained on a busy machine.\n"
    )
    attach_target_prior(
        tmp_path, TargetPrior.fit(torch.randn(100, 4, generator=torch.Generator().manual_seed(0)))
    )
    text = write_card(tmp_path, _result(0.25), "| second table |").read_text()
    assert "| second table |" in text and "| first table |" not in text
    assert text.count("## Evaluation") == 1 and text.count("## Status") == 1
    assert text.index("## Evaluation") < text.index("## Pictures") < text.index("## Status")
    assert "Trained on a busy machine." in text and "![samples](samples.png)" in text
    assert "fitted to the encoded e of 100 unlabelled training images" in text


def test_a_card_mentions_a_stored_domain_reference_and_the_manifest_keeps_it(tmp_path):
    export_inference(SRbVAE(tiny_config()), tmp_path, name="tiny", training={"step": 5})
    assert "Domain check" not in write_card(tmp_path, _result(0.5), "| t |").read_text()
    ref = DomainReference.fit(np.linspace(0.01, 0.2, 200), trained_on="synthetic faces")
    update_manifest(tmp_path, domain=ref.record())
    text = write_card(tmp_path, _result(0.5), "| t |").read_text()
    assert f"{DOMAIN_BULLET} every answer scores" in text and "99th percentile 0.1981" in text
    assert json.loads((tmp_path / "model.json").read_text())["domain"] == ref.record()
