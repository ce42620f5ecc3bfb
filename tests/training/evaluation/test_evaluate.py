from model import load_model
from tests.training.conftest import tiny_run
from training.card import write_card
from training.config import load_config
from training.data import PreparedDataset
from training.evaluation.evaluate import evaluate, markdown
from training.loop import train


def test_evaluation_reports_probes_fidelity_and_writes_a_card(tiny_faces, tmp_path):
    run_dir = train(load_config(None, tiny_run(tiny_faces, tmp_path, "ev", 2)))
    model = load_model(run_dir / "export")
    data = PreparedDataset.open(tiny_faces)
    result = evaluate(model, data, oracle_steps=30, nonlinear_probes=True)

    probes = result["probes"]
    assert probes["task"] == "per_class_accuracy"
    assert set(probes["features"]) == {"e", "z", "all", "chance"}
    assert 0.0 <= probes["features"]["e"]["average"] <= 1.0
    assert set(probes["nonlinear"]) == {"e", "z", "all"}  # the MLP beside the linear probe
    assert set(probes["nonlinear"]["e"]) == set(probes["features"]["e"])
    for section in ("transfer", "sample", "neutralize", "oracle"):
        assert result[section], section
    position = result["reference_code"]
    assert position["e_ref_mahalanobis"] >= 0
    assert 0 < position["codes_median"] <= position["codes_p99"]
    # The oracle's error factor by factor: what a network given every label reads off the images.
    oracle = result["oracle"]
    per_factor = [oracle[f"{name}_mae"] for name in data.factor_names]
    assert abs(sum(per_factor) / len(per_factor) - oracle["factor_mae"]) < 1e-6
    assert "target_mae_to_attributes" in result["transfer"]
    assert result["transfer"]["expression_region_change_ratio"] > 0
    assert "common_mae" in result["sample"]
    # Faces: what a transfer loses of each common factor beside what reconstruction loses.
    assert "common_mae_unedited" in result["transfer"]
    by_factor = result["common_factors"]
    assert set(by_factor) == set(data.common_factor_names)
    for errors in by_factor.values():
        assert set(errors) == {"real", "unedited", "transfer"}
        assert all(v >= 0 for v in errors.values())
    mean_transfer = sum(e["transfer"] for e in by_factor.values()) / len(by_factor)
    assert abs(mean_transfer - result["transfer"]["common_mae"]) < 1e-4  # the same pairs

    table = markdown(result)
    assert "common factors a transfer loses most" in table
    assert "- e through a two-layer MLP instead: " in table
    assert "- e^r among the unlabelled codes: Mahalanobis distance " in table
    assert "| t (srbvae), e |" not in table and "(srbvae), e |" in table
    card = write_card(run_dir / "export", result, table)
    assert "python -m training evaluate" in card.read_text()
    reloaded = load_model(run_dir / "export")  # metrics in the manifest; checksum still valid
    assert reloaded.manifest["metrics"]["probe_task"] == "per_class_accuracy"


def test_the_digits_table_shows_the_paper_the_model_and_the_oracle_ceiling():
    probes = {"width": 0.2, "scale": 0.1, "colour_r": 0.02, "colour_g": 0.03, "colour_b": 0.04}
    features = {k: {**probes, "average": 0.078} for k in ("e", "z", "all", "mean")}
    oracle = {"factor_mae": 0.03, "width_mae": 0.08, "scale_mae": 0.035}
    oracle |= {"colour_r_mae": 0.01, "colour_g_mae": 0.02, "colour_b_mae": 0.005}
    result = {
        "model": "m",
        "variant": "srbvae",
        "dataset": {"source": "digits"},
        "probes": {"task": "regression_mae", "features": features},
        "oracle": oracle,
    }
    rows = markdown(result).splitlines()
    assert "| sRb-VAE (paper), e | .057 | .053 | .055 | .038 | .095 | .060 |" in rows
    assert "| m (srbvae), e | .020 | .030 | .040 | .100 | .200 | .078 |" in rows
    # Columns R, G, B, Scale, Width; the average is the five factors'.
    assert (
        "| oracle (a CNN trained on every label) | .010 | .020 | .005 | .035 | .080 | .030 |"
        in rows
    )
    del result["oracle"]["scale_mae"]  # an oracle cached without per-factor errors: no row
    assert not any(row.startswith("| oracle") for row in markdown(result).splitlines())


def test_install_puts_the_checkpoint_where_the_worker_finds_it(tiny_faces, tmp_path):
    from training.install_cli import install

    run_dir = train(load_config(None, tiny_run(tiny_faces, tmp_path, "inst", 2)))
    target = install(run_dir / "export", "faces", tmp_path / "models", run_dir / "grids")
    model = load_model(target)
    assert model.name == "faces" and target == tmp_path / "models" / "faces"
    assert (target / "transfers.png").is_file()
    # A worker runs as another user than the trainer (a container's non-root user).
    assert all(f.stat().st_mode & 0o444 == 0o444 for f in target.rglob("*"))


def test_the_region_change_ratio_tells_an_expression_edit_from_a_background_change(tiny_faces):
    import numpy as np
    import torch

    from training.data.faces import PROTOTYPES, Common, expression_region, render_face
    from training.evaluation.fidelity import region_change_ratio

    data = PreparedDataset.open(tiny_faces)
    common = np.asarray(data["eval_score"].common[:4])
    r = data.resolution

    def tensor(images):
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1

    people = [Common(*row.tolist()) for row in common]
    neutral = tensor([render_face(c, resolution=r) for c in people])
    smiling = tensor([render_face(c, PROTOTYPES["happiness"], r) for c in people])
    assert region_change_ratio(data, common, smiling, neutral) > 3
    # The same amount of change spread over the whole image scores about 1.
    assert 0.8 < region_change_ratio(data, common, neutral + 0.1, neutral) < 1.2
    assert expression_region(people[0], r).any()


def test_edits_rendered_onto_the_input_are_scored_as_served(tiny_faces, tmp_path):
    from model.rendering import Rendering
    from training.install_cli import install

    run_dir = train(load_config(None, tiny_run(tiny_faces, tmp_path, "onto", 2)))
    assert load_model(install(run_dir / "export", "g", tmp_path)).rendering == Rendering()
    target = install(run_dir / "export", "faces", tmp_path, rendering=Rendering("input", 0.05))
    model = load_model(target)
    assert model.rendering == Rendering("input", 0.05)
    data = PreparedDataset.open(tiny_faces)

    onto = evaluate(model, data, oracle_steps=30)
    assert onto["rendering"] == {"mode": "input", "tolerance": 0.05}
    # Unedited, a picture rendered onto itself is the picture: the oracle reads it as the real.
    for errors in onto["common_factors"].values():
        assert abs(errors["unedited"] - errors["real"]) < 1e-4
    # The generator's own pictures beside them, scored on the same pairs.
    plain = onto["generator_rendering"]
    assert set(plain) == {"transfer", "sample", "neutralize"}
    assert plain["transfer"]["common_mae_unedited"] != onto["transfer"]["common_mae_unedited"]
    generated = evaluate(model, data, oracle_steps=30, render="generator")
    assert "generator_rendering" not in generated
    assert generated["transfer"] == plain["transfer"]
    assert generated["rendering"]["mode"] == "generator"
    assert generated["transfer"]["common_mae_unedited"] != onto["transfer"]["common_mae_unedited"]
    table = markdown(onto)
    assert "- rendering of the edits below: input (the edit's change on the input, " in table
    assert "- transfer, the generator's picture G(z, e) instead: " in table
    card = write_card(target, onto, table).read_text()
    assert "tolerance 0.05" in card and "render=generator" in card
