"""Table 1 of the paper (5.3) and the fidelity of transfers, samples and neutralisation.

Probes: encode `eval_fit` and `eval_score` (held-out, never trained on), fit a linear model on the
first, score the second. Digits: mean absolute error per style factor; faces: per-class accuracy
of a linear classifier over the seven expressions. Features: e (what Rb-/sRb-VAE are for), z as
the control (a separated z should predict the target factors badly), and all latents [z, e]
(the unsupervised baselines' features).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from model.inference import ReferenceVAE
from model.rendering import RenderMode
from training.data import PreparedDataset
from training.evaluation import fidelity, probes
from training.evaluation.features import encode_split
from training.evaluation.oracle import load_or_train_oracle, oracle_floor
from training.evaluation.reference_code import reference_code_position

# Paper, Table 1 (MNIST columns) and Sec. 5.3 (z as features).
PAPER_DIGITS = {
    "sRb-VAE (paper), e": {
        "R": 0.057,
        "G": 0.053,
        "B": 0.055,
        "Scale": 0.038,
        "Width": 0.095,
        "Avg": 0.060,
    },
    "Rb-VAE (paper), e": {
        "R": 0.065,
        "G": 0.069,
        "B": 0.062,
        "Scale": 0.061,
        "Width": 0.095,
        "Avg": 0.070,
    },
    "VAE (paper), all": {
        "R": 0.099,
        "G": 0.104,
        "B": 0.101,
        "Scale": 0.034,
        "Width": 0.085,
        "Avg": 0.085,
    },
    "sRb-VAE (paper), z": {"Avg": 0.189},
}
# (z, e) of each held-out split, by split name.
Codes = dict[str, tuple[np.ndarray, np.ndarray]]
DIGIT_COLUMNS = {
    "R": "colour_r",
    "G": "colour_g",
    "B": "colour_b",
    "Scale": "scale",
    "Width": "width",
}


def feature_sets(z: np.ndarray, e: np.ndarray) -> dict[str, np.ndarray]:
    return {"e": e, "z": z, "all": np.hstack([z, e])}


def encode_probe_splits(model: ReferenceVAE, data: PreparedDataset) -> Codes:
    """z and e of the probes' held-out splits, `eval_fit` and `eval_score`, encoded once for
    every measure that reads them."""
    return {
        split: encode_split(model, np.asarray(data[split].images))
        for split in ("eval_fit", "eval_score")
    }


def probe_scores(codes: Codes, data: PreparedDataset, nonlinear: bool = False) -> dict[str, Any]:
    """Table 1's linear probes of e, z and both; with `nonlinear`, the same with a small MLP
    under "nonlinear" (not the paper's measure: whether a factor is in the features at all)."""
    fit, score = data["eval_fit"], data["eval_score"]
    (z_fit, e_fit), (z_score, e_score) = codes["eval_fit"], codes["eval_score"]
    fits, scores = feature_sets(z_fit, e_fit), feature_sets(z_score, e_score)
    out: dict[str, Any] = {"task": "", "features": {}}
    regression = data.source == "digits" or bool(data.factor_names and not data.class_names)
    linear: Callable[..., np.ndarray]
    mlp: Callable[..., np.ndarray]
    extra: tuple[int, ...]
    if regression:
        out["task"] = "regression_mae"
        names = list(data.factor_names)
        y_fit, y_score = fit.factors, score.factors
        linear, mlp, extra = probes.linear_regression_mae, probes.mlp_regression_mae, ()
    else:
        out["task"] = "per_class_accuracy"
        names = [c for c in data.class_names if c != "neutral"]
        y_fit, y_score = fit.labels, score.labels
        linear, mlp = probes.linear_classifier_accuracy, probes.mlp_classifier_accuracy
        extra = (len(names),)

    def row(values: np.ndarray) -> dict[str, float]:
        return {
            **dict(zip(names, map(float, values), strict=True)),
            "average": float(np.nanmean(values)),
        }

    def scored(probe: Callable[..., np.ndarray]) -> dict[str, dict[str, float]]:
        return {k: row(probe(fits[k], y_fit, scores[k], y_score, *extra)) for k in fits}

    out["features"] = scored(linear)
    if regression:
        out["features"]["mean"] = row(probes.mean_predictor_mae(y_fit, y_score))
    else:
        out["features"]["chance"] = {"average": 1.0 / len(names)}
    if nonlinear:
        out["nonlinear"] = scored(mlp)
    return out


def evaluate(
    model: ReferenceVAE,
    data: PreparedDataset,
    *,
    fidelity_checks: bool = True,
    oracle_steps: int = 2000,
    nonlinear_probes: bool = False,
    render: RenderMode | None = None,
) -> dict[str, Any]:
    """The probes, and (with fidelity_checks) the oracle's reading of transfers, samples and
    neutralised images rendered as `render` asks (None: the model's default)."""
    started = time.monotonic()
    result: dict[str, Any] = {
        "model": model.name,
        "variant": model.cfg.variant,
        "checkpoint_sha256": model.manifest.get("weights", {}).get("sha256"),
        "dataset": {"path": str(data.path), "source": data.source, "resolution": data.resolution},
    }
    codes = encode_probe_splits(model, data)
    result["probes"] = probe_scores(codes, data, nonlinear=nonlinear_probes)
    if model.cfg.variant != "vae":  # the VAE has no e^r
        result["reference_code"] = reference_code_position(model, codes["eval_score"][1])
    if fidelity_checks and data.factor_names:
        oracle = load_or_train_oracle(data, steps=oracle_steps)
        result["oracle"] = oracle_floor(oracle, data)
        result["rendering"] = {
            **model.rendering.to_record(),
            "mode": render or model.rendering.mode,
        }
        # Beside edits rendered onto the input, the generator's own pictures, the paper's output:
        # the same edits, generated once and rendered both ways.
        renders: tuple[RenderMode | None, ...] = (render,)
        if result["rendering"]["mode"] != "generator":
            renders += ("generator",)
        transfers = fidelity.make_transfers(model, data, renders=renders)
        samples = fidelity.sample_fidelity(model, data, oracle, renders=renders)
        neutralised = fidelity.neutralize_fidelity(model, data, oracle, renders=renders)
        result["transfer"] = fidelity.transfer_fidelity(transfers[0], data, oracle)
        result["sample"], result["neutralize"] = samples[0], neutralised[0]
        if by_factor := fidelity.common_factor_errors(transfers[0], data, oracle):
            result["common_factors"] = by_factor
        if len(renders) > 1:
            result["generator_rendering"] = {
                "transfer": fidelity.transfer_fidelity(transfers[1], data, oracle),
                "sample": samples[1],
                "neutralize": neutralised[1],
            }
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _f(v: float | None) -> str:
    return (
        ""
        if v is None or (isinstance(v, float) and np.isnan(v))
        else f"{v:.3f}".replace("0.", ".", 1)
    )


def _row(name: str, vals: dict[str, float], keys: list[str]) -> str:
    cells = " | ".join(_f(vals.get(k)) for k in keys)
    return f"| {name} | {cells} | {_f(vals.get('average', vals.get('Avg')))} |"


def markdown(result: dict[str, Any], baselines: dict[str, dict] | None = None) -> str:
    """Table 1 style: this model beside the paper (digits) and any baselines given."""
    probes_ = result["probes"]
    features = probes_["features"]
    digits = result["dataset"]["source"] == "digits"
    keys = [k for k in features["e"] if k != "average"]  # factor or class names
    if digits:
        keys = list(DIGIT_COLUMNS.values())
        header = list(DIGIT_COLUMNS)
    else:
        header = [k[:5] for k in keys]
    lines = [
        "| model, features | " + " | ".join(header) + " | Avg |",
        "|---" * (len(header) + 2) + "|",
    ]
    if digits:
        lines += [_row(name, vals, list(DIGIT_COLUMNS)) for name, vals in PAPER_DIGITS.items()]
    models = [(f"{result['model']} ({result['variant']})", result), *(baselines or {}).items()]
    for name, r in models:
        lines += [
            _row(f"{name}, {key}", r["probes"]["features"][key], keys) for key in ("e", "z", "all")
        ]
    if probes_["task"] == "regression_mae":
        lines.append(_row("predict the mean", features["mean"], keys))
        if oracle := result.get("oracle"):
            # What a CNN given every label reads off the same images: a yardstick for the rows.
            ceiling = {k: oracle[f"{k}_mae"] for k in keys if f"{k}_mae" in oracle}
            if len(ceiling) == len(keys):
                ceiling["average"] = float(np.mean(list(ceiling.values())))
                lines.append(_row("oracle (a CNN trained on every label)", ceiling, keys))
        caption = "Mean absolute error on `eval_score` of linear regressions fitted on `eval_fit` (lower is better)."
    else:
        lines.append(_row("chance", features["chance"], keys))
        caption = "Per-class accuracy on `eval_score` of a linear classifier fitted on `eval_fit` (higher is better)."
    lines += ["", caption]
    if nonlinear := probes_.get("nonlinear"):
        for key in ("e", "z", "all"):
            cells = ", ".join(
                f"{name} {_f(nonlinear[key].get(k))}" for name, k in zip(header, keys, strict=True)
            )
            lines.append(
                f"- {key} through a two-layer MLP instead: {cells}, "
                f"average {_f(nonlinear[key]['average'])}"
            )
    if position := result.get("reference_code"):
        lines.append(
            f"- e^r among the unlabelled codes: Mahalanobis distance "
            f"{position['e_ref_mahalanobis']:.1f} (the codes' own: median "
            f"{position['codes_median']:.1f}, 99th percentile {position['codes_p99']:.1f})"
        )
    if rendering := result.get("rendering"):
        how = "the edit's change on the input" if rendering["mode"] == "input" else "G(z, e)"
        tolerance = f", tolerance {rendering['tolerance']}" if rendering["mode"] == "input" else ""
        lines.append(f"- rendering of the edits below: {rendering['mode']} ({how}{tolerance})")
    for section in ("transfer", "sample", "neutralize", "oracle"):
        if section in result:
            items = ", ".join(f"{k} {v:.3f}" for k, v in result[section].items())
            lines.append(f"- {section}: {items}")
    if plain := result.get("generator_rendering"):
        for section, values in plain.items():
            items = ", ".join(f"{k} {v:.3f}" for k, v in values.items())
            lines.append(f"- {section}, the generator's picture G(z, e) instead: {items}")
    if by_factor := result.get("common_factors"):
        lost = sorted(by_factor.items(), key=lambda kv: kv[1]["unedited"] - kv[1]["transfer"])
        items = ", ".join(
            f"{k} {_f(v['real'])} / {_f(v['unedited'])} / {_f(v['transfer'])}" for k, v in lost[:5]
        )
        lines.append(
            "- common factors a transfer loses most (oracle error on the real image / the "
            f"model's own rendering / the transfer): {items}"
        )
    return "\n".join(lines)
