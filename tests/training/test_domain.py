import json

import numpy as np

from model import load_model
from tests.utils.checkpoints import make_checkpoint
from training.__main__ import main
from training.card import DOMAIN_BULLET
from training.data import PreparedDataset
from training.domain import split_errors


def test_domain_stats_stores_the_held_out_errors_without_touching_the_weights(tiny_faces, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "faces", "faces")
    weights = (checkpoint / "model.safetensors").read_bytes()
    (checkpoint / "MODEL_CARD.md").write_text(
        "# Model card\n\n- **Sampling**: N(0, I).\n- **Evaluation**: x\n"
    )

    assert main(["domain-stats", "--checkpoint", str(checkpoint), "--data", str(tiny_faces)]) == 0

    assert (checkpoint / "model.safetensors").read_bytes() == weights
    model = load_model(checkpoint)
    held_out = np.asarray(PreparedDataset.open(tiny_faces)["eval_fit"].images)
    errors = split_errors(model, held_out)
    assert model.domain is not None and model.domain.images == len(held_out) == 70
    assert np.isclose(model.domain.quantiles[0], errors.min(), rtol=1e-5)
    assert np.isclose(model.domain.quantiles[100], errors.max(), rtol=1e-5)
    assert model.manifest["domain"]["data"] == str(tiny_faces)

    # Run again (new weights installed): one domain line in the card, after Sampling.
    main(["domain-stats", "--checkpoint", str(checkpoint), "--data", str(tiny_faces)])
    lines = (checkpoint / "MODEL_CARD.md").read_text().splitlines()
    assert [i for i, line in enumerate(lines) if line.startswith(DOMAIN_BULLET)] == [3]
    assert json.loads((checkpoint / "model.json").read_text())["domain"]["split"] == "eval_fit"
