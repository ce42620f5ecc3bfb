"""Does a transfer move the target factors and keep the common ones? Measured by the oracle.

The roles by source: for digits the target factors are the style (width, scale, colour) and the
common factor is the digit (its class); for faces the target factors are the expression (and
its class) and the common factors the identity, pose, lighting and background.

Every output is scored as the service answers it: rendered as the model's default rendering, or
the one `render` names (model/rendering.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.images import uint8_to_tensor
from model.inference import ReferenceVAE
from model.rendering import RenderMode
from training.data import PreparedDataset
from training.evaluation.features import encode_split, generate
from training.evaluation.oracle import Oracle


def _target(data: PreparedDataset, split, idx) -> tuple[np.ndarray, np.ndarray | None]:
    """Ground-truth target factors, and the target class where the class is the target."""
    labels = split.labels[idx] if data.source != "digits" and len(data.class_names) else None
    return split.factors[idx], labels


def _common_kept(data: PreparedDataset, pred: dict, split, idx) -> dict[str, float]:
    """How well the output keeps the common factors of the images at `idx`."""
    if data.source == "digits":
        return {"common_class_accuracy": float((pred["class"] == split.labels[idx]).mean())}
    if split.common.shape[1]:
        return {"common_mae": float(np.abs(pred["common"] - split.common[idx]).mean())}
    return {}


def rendered(
    model: ReferenceVAE,
    images: np.ndarray,
    z: np.ndarray,
    e: np.ndarray,
    edited: torch.Tensor,
    renders: Sequence[RenderMode | None],
    edits_per_image: int = 1,
) -> list[torch.Tensor]:
    """Edits `edited` of the (N, R, R, 3) uint8 `images` (posterior means z, e), the edits of
    each image `edits_per_image` consecutive rows, rendered in each of `renders` (None: the
    model's default); each image's reconstruction, which rendering onto the input composes
    with, is made once for all its edits and renderings."""
    if not any(model.rendering.needs_reconstruction(r) for r in renders):
        return [edited for _ in renders]
    reconstruction = generate(model, z, e).repeat_interleave(edits_per_image, dim=0)
    x = uint8_to_tensor(images).repeat_interleave(edits_per_image, dim=0)
    return [model.rendering.compose(x, edited, reconstruction, r) for r in renders]


@dataclass(frozen=True)
class Transfers:
    """G(z of B, e of A) for random held-out pairs (A, B): A gives e (attributes), B gives z;
    and, where the data has common factors, the model's own rendering G(z of B, e of B) (B
    itself where edits are rendered onto the input). Made once, scored by `transfer_fidelity`
    and `common_factor_errors`."""

    idx_a: np.ndarray
    idx_b: np.ndarray
    edited: torch.Tensor
    unedited: torch.Tensor | None


def make_transfers(
    model: ReferenceVAE,
    data: PreparedDataset,
    pairs: int = 1000,
    seed: int = 0,
    renders: Sequence[RenderMode | None] = (None,),
) -> list[Transfers]:
    """The transfers of the same pairs rendered in each of `renders` (None: the model's
    default); the pictures are generated once for all of them."""
    split = data["eval_score"]
    rng = np.random.default_rng(seed)
    idx_b = rng.choice(len(split), min(pairs, len(split)), replace=False)
    idx_a = rng.permutation(idx_b)
    images = np.asarray(split.images)
    z_b, e_b = encode_split(model, images[idx_b])
    _, e_a = encode_split(model, images[idx_a])
    x_b, common = uint8_to_tensor(images[idx_b]), bool(split.common.shape[1])
    # B's reconstruction, once: the unedited rendering, and what an edit onto B is composed with.
    needed = common or any(model.rendering.needs_reconstruction(r) for r in renders)
    rec = generate(model, z_b, e_b) if needed else None
    edited = generate(model, z_b, e_a)
    return [
        Transfers(
            idx_a,
            idx_b,
            model.rendering.compose(x_b, edited, rec, r),
            model.rendering.compose(x_b, rec, rec, r) if rec is not None and common else None,
        )
        for r in renders
    ]


def transfer_fidelity(t: Transfers, data: PreparedDataset, oracle: Oracle) -> dict[str, float]:
    split = data["eval_score"]
    idx_a, idx_b = t.idx_a, t.idx_b
    pred = oracle.predict(t.edited)
    f_a, c_a = _target(data, split, idx_a)
    f_b, _ = _target(data, split, idx_b)
    out = {
        # Target factors of the output against A's (what was asked for) ...
        "target_mae_to_attributes": float(np.abs(pred["factors"] - f_a).mean()),
        # ... against B's (what a transfer that changes nothing would score) ...
        "target_mae_to_image": float(np.abs(pred["factors"] - f_b).mean()),
        # ... and the distance between A's and B's own factors, for scale.
        "target_mae_between_pairs": float(np.abs(f_a - f_b).mean()),
    }
    if c_a is not None:
        out["target_class_accuracy"] = float((pred["class"] == c_a).mean())
    out.update(_common_kept(data, pred, split, idx_b))
    if data.source == "digits":
        out["common_class_from_attributes"] = float((pred["class"] == split.labels[idx_a]).mean())
    if t.unedited is not None:
        # The model's own rendering of B keeps B's common factors this well: what is lost beyond
        # it is the transfer's doing, not the reconstruction's.
        kept = _common_kept(data, oracle.predict(t.unedited), split, idx_b)
        out.update({f"{k}_unedited": v for k, v in kept.items()})
    if data.source == "faces" and t.unedited is not None:
        out["expression_region_change_ratio"] = region_change_ratio(
            data, split.common[idx_b], t.edited, t.unedited
        )
    return out


def common_factor_errors(
    t: Transfers, data: PreparedDataset, oracle: Oracle
) -> dict[str, dict[str, float]]:
    """Per common factor, the oracle's mean absolute error on B's real images, on the model's
    own rendering G(z of B, e of B) and on the transfers G(z of B, e of A): which factors a
    transfer moves beyond what reconstruction loses."""
    if t.unedited is None:
        return {}
    split = data["eval_score"]
    truth = np.asarray(split.common[t.idx_b])
    errors = {
        name: np.abs(oracle.predict(x)["common"] - truth).mean(0)
        for name, x in (
            ("real", np.asarray(split.images)[t.idx_b]),
            ("unedited", t.unedited),
            ("transfer", t.edited),
        )
    }
    return {
        factor: {name: float(err[i]) for name, err in errors.items()}
        for i, factor in enumerate(data.common_factor_names)
    }


def region_change_ratio(
    data: PreparedDataset, common: np.ndarray, edited: torch.Tensor, unedited: torch.Tensor
) -> float:
    """How much more an edit changes the pixels an expression can touch (brows, eyes, mouth)
    than the rest, per pixel: a clean expression edit scores well above 1, an edit that moves
    the background or the face's shape as much as the expression about 1. `unedited` is the
    model's own rendering of the same z and e (reconstruction error is not an edit)."""
    from training.data.faces import Common, expression_region
    from training.data.faces.render import ZOOM

    zoom = data.meta.get("zoom", ZOOM)
    change = (edited - unedited).abs().mean(1).numpy()  # (N, R, R)
    inside = outside = 0.0
    for i, row in enumerate(common):
        region = expression_region(Common(*row.tolist()), data.resolution, zoom)
        inside += change[i][region].mean()
        outside += change[i][~region].mean()
    return float(inside / max(outside, 1e-8))


def sample_fidelity(
    model: ReferenceVAE,
    data: PreparedDataset,
    oracle: Oracle,
    images: int = 200,
    n: int = 8,
    seed: int = 0,
    renders: Sequence[RenderMode | None] = (None,),
) -> list[dict[str, float]]:
    """n samples per fixed z, e drawn as `/sample` draws it (the model's sampling distribution):
    the target factors should spread, the common stay. One score per rendering in `renders`."""
    split = data["eval_score"]
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(split), min(images, len(split)), replace=False)
    x = np.asarray(split.images)[idx]
    z_own, e_own = encode_split(model, x)
    gen = torch.Generator().manual_seed(seed)
    e = model.prior.draw(len(idx) * n, gen).numpy()
    samples = generate(model, np.repeat(z_own, n, axis=0), e)

    def score(samples: torch.Tensor) -> dict[str, float]:
        pred = oracle.predict(samples)
        spread = pred["factors"].reshape(len(idx), n, -1).std(1).mean()
        return {
            "target_spread_within_z": float(spread),
            "target_spread_in_data": float(split.factors.std(0).mean()),
            **_common_kept(data, pred, split, np.repeat(idx, n)),
        }

    return [score(s) for s in rendered(model, x, z_own, e_own, samples, renders, n)]


def neutralize_fidelity(
    model: ReferenceVAE,
    data: PreparedDataset,
    oracle: Oracle,
    images: int = 500,
    renders: Sequence[RenderMode | None] = (None,),
) -> list[dict[str, float]]:
    """G(z, e^r) should carry the reference set's target factors and keep the common ones. One
    score per rendering in `renders`."""
    split = data["eval_score"]
    idx = np.arange(min(images, len(split)))
    x = np.asarray(split.images)[idx]
    z, e = encode_split(model, x)
    reference = np.asarray(data["reference"].factors).mean(0)

    def score(neutralised: torch.Tensor) -> dict[str, float]:
        pred = oracle.predict(neutralised)
        return {
            "target_mae_to_reference": float(np.abs(pred["factors"] - reference).mean()),
            **_common_kept(data, pred, split, idx),
        }

    return [score(n) for n in rendered(model, x, z, e, generate(model, z, None), renders)]
