"""Model cards: what a served checkpoint is, how it was made, and how well it does.

The card's facts live in the checkpoint's manifest (model.json: command, data, wall time,
metrics), which /models serves; MODEL_CARD.md renders them for people.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from model.checkpoint import INFERENCE_MANIFEST, manifest_method
from model.rendering import Rendering


def summary_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The numbers /models shows: probe averages by feature set, and the fidelity checks."""
    feats = result["probes"]["features"]
    metrics: dict[str, Any] = {
        "probe_task": result["probes"]["task"],
        **{f"probe_{k}_average": round(v["average"], 4) for k, v in feats.items()},
    }
    for section in ("transfer", "sample", "neutralize"):
        for k, v in result.get(section, {}).items():
            metrics[f"{section}_{k}"] = round(v, 4)
    return metrics


def write_card(checkpoint: Path, result: dict[str, Any], table: str) -> Path:
    manifest_path = checkpoint / INFERENCE_MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["metrics"] = summary_metrics(result)
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)  # the weights' checksum is unaffected: it covers the weights

    training = manifest.get("training", {})
    data = manifest.get("data", {})
    cfg = manifest["model_config"]
    card = checkpoint / "MODEL_CARD.md"
    old = card.read_text() if card.is_file() else ""
    title = f"# Model card: `{manifest['name']}`"
    if old.startswith(title):  # install's "(trained as run ...)" stays
        title = old.splitlines()[0]
    lines = [
        title,
        "",
        f"- **Model**: {manifest_method(manifest)} at {cfg['resolution']}x{cfg['resolution']}, "
        f"z_dim {cfg['z_dim']}, "
        f"e_dim {cfg['e_dim']}; weights `{manifest['weights']['file']}` ({manifest.get('dtype')}), "
        f"SHA-256 `{manifest['weights']['sha256']}`.",
        f"- **Data**: `{data.get('source')}` prepared dataset `{data.get('path')}`, sizes {data.get('sizes')}.",
        f"- **Command**: `{manifest.get('command', '')}`",
        f"- **Training**: {training.get('step')} steps, wall time {training.get('wall_time_seconds')} s "
        f"on {training.get('device')} x{training.get('processes')}, "
        f"{'bf16 autocast' if training.get('mixed_precision') else 'fp32'}.",
        f"- **Sampling**: `/sample` draws e from {_sampling(manifest)}.",
        f"- **Rendering**: {_rendering(manifest)}",
        *([line] if (line := domain_line(manifest)) else []),
        f"- **Evaluation**: `python -m training evaluate --checkpoint {checkpoint}` "
        f"({result.get('seconds')} s); held-out splits only.",
        "",
        "## Evaluation",
        "",
        table,
        "",
    ]
    card.write_text("\n".join(lines) + _kept_sections(old))
    return card


# Sections this module writes; any other `## ` section of an existing card (pictures added at
# install, a hand-written status) is carried over when the card is written again.
_GENERATED = ("## Evaluation",)


def _kept_sections(text: str) -> str:
    kept, keep = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            keep = not line.rstrip().startswith(_GENERATED)
        elif line.startswith("# "):
            keep = False
        if keep:
            kept.append(line)
    return ("\n" + "".join(kept)) if kept else ""


DOMAIN_BULLET = "- **Domain check**:"


def domain_line(manifest: dict[str, Any]) -> str | None:
    """The card's line on the stored domain reference (model/domain.py), None without one."""
    domain = manifest.get("domain")
    if not domain:
        return None
    q = domain["quantiles"]
    return (
        f"{DOMAIN_BULLET} every answer scores each input's reconstruction error |x - G(z, e)| "
        f"as a percentile of {domain['images']} held-out `{domain['split']}` images' "
        f"(median {q[50]:.4f}, 99th percentile {q[99]:.4f}); above the "
        f"{domain['threshold_percentile']:g}th it is out of domain "
        "(`python -m training domain-stats`)."
    )


def write_domain_line(checkpoint: Path) -> Path | None:
    """Puts the domain line into an existing MODEL_CARD.md (after Sampling, or in place of
    an older one); returns the card's path, None where there is no card."""
    card = checkpoint / "MODEL_CARD.md"
    line = domain_line(json.loads((checkpoint / INFERENCE_MANIFEST).read_text()))
    if not card.is_file() or line is None:
        return None
    lines = [x for x in card.read_text().split("\n") if not x.startswith(DOMAIN_BULLET)]
    at = next((i + 1 for i, x in enumerate(lines) if x.startswith("- **Sampling**")), 1)
    lines.insert(at, line)
    card.write_text("\n".join(lines))
    return card


def _rendering(manifest: dict[str, Any]) -> str:
    rendering = Rendering.from_record(manifest.get("rendering"))
    if rendering.mode == "generator":
        return "edits answer the generator's picture G(z, e) unless a request asks `render=input`."
    return (
        "edits answer the input with the edit's change, the generated pixels where the edit "
        f"redraws (model/rendering.py, tolerance {rendering.tolerance}), unless a request asks "
        "`render=generator`; the evaluation gives both."
    )


def _sampling(manifest: dict[str, Any]) -> str:
    images = manifest.get("sampling", {}).get("images")
    if not images:
        return "the prior N(0, I)"
    return (
        f"a Gaussian fitted to the encoded e of {images} unlabelled training images "
        "(`python -m training fit-prior`; the prior N(0, I) leaves the data)"
    )
