"""The domain check (model/domain.py) on the faces models: held-out synthetic faces against
real photos, and what it costs.

    python -m bench.domain_overlap [--models models/faces models/faces-rbvae] [--heldout 5000]

Printed per model: the reconstruction error's stored threshold (the 99th percentile of the
held-out `eval_fit` images the checkpoint stores), then on images it was not fitted to: the
`eval_score` split (synthetic faces the model never trained on) and 99 real faces, each found
and aligned by `photos` as the worker aligns a photo (detect, the largest face, align_face at
the model's framing, data.zoom in model.json): scikit-image's astronaut and the 98 faces of its
lfw_subset that the detector finds. For each: the share flagged out of domain, the separation
(AUC: the chance that a real face's error exceeds a held-out synthetic face's), and the same
AUC for the latents' prior likelihood (the posteriors' KL to N(0, I)), the alternative that
needs no generate pass.

--cost times what the check adds to the worker's generate pass: the input's reconstruction
rows (1 for neutralize, 2 for transfer) beside the edit's rows, and the error itself.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from model import load_model
from model.domain import reconstruction_error
from model.images import uint8_to_tensor
from model.inference import ReferenceVAE
from photos import align_face, detect_faces
from tests.utils.face_scenes import astronaut, lfw_subset
from training.data import PreparedDataset
from training.domain import split_errors

MODELS = ("models/faces", "models/faces-rbvae")


def real_faces(resolution: int, zoom: float) -> np.ndarray:
    """(N, R, R, 3) uint8: the astronaut's face, then each lfw_subset face the detector finds,
    aligned as the worker aligns a photo."""
    faces, _ = lfw_subset()
    crops = []
    for photo in [astronaut(), *faces]:
        found = detect_faces(photo)
        if found:
            crops.append(align_face(photo, found[0], resolution, zoom).crop)
    return np.stack(crops)


def heldout_faces(model: ReferenceVAE, count: int) -> np.ndarray:
    """The first `count` images of the model's eval_score split: never trained on, and not
    the eval_fit images its reference was fitted to."""
    data = PreparedDataset.open(model.manifest["data"]["path"])
    return np.asarray(data["eval_score"].images[:count])


def auc(low: np.ndarray, high: np.ndarray) -> float:
    """P(a value of `high` > a value of `low`), ties counted half."""
    greater = (high[:, None] > low[None, :]).mean()
    return float(greater + 0.5 * (high[:, None] == low[None, :]).mean())


def kl_to_prior(model: ReferenceVAE, images: np.ndarray) -> np.ndarray:
    """(N,) KL(q(z|x) q(e|x) || N(0, I)) of each image: the latents' prior likelihood."""
    x = uint8_to_tensor(images)
    with torch.inference_mode():
        total = torch.zeros(len(x))
        for encoder in (model.net.encoder_z, model.net.encoder_e):
            mu, logvar = encoder(x)
            total += 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    return total.numpy()


def overlap(model: ReferenceVAE, heldout: np.ndarray, real: np.ndarray) -> dict[str, float]:
    ref = model.domain
    assert ref is not None, "no stored domain reference: python -m training domain-stats"
    err_h, err_r = split_errors(model, heldout), split_errors(model, real)
    out_h = ref.out_of_domain(torch.from_numpy(err_h))
    out_r = ref.out_of_domain(torch.from_numpy(err_r))
    return {
        "threshold_error": ref.threshold_error,
        "heldout": len(heldout),
        "heldout_flagged": float(np.mean(out_h)),
        "heldout_error_median": float(np.median(err_h)),
        "real": len(real),
        "real_flagged": float(np.mean(out_r)),
        "real_error_min": float(err_r.min()),
        "real_error_median": float(np.median(err_r)),
        "astronaut_percentile": ref.percentile(torch.from_numpy(err_r[:1]))[0],
        "auc_error": auc(err_h, err_r),
        "auc_kl": auc(kl_to_prior(model, heldout), kl_to_prior(model, real)),
    }


def check_cost(model: ReferenceVAE, repeats: int = 300) -> dict[int, tuple[float, float]]:
    """Median ms of the generate pass for 1 and 8 edit rows (neutralize, sample), without and
    with the inputs' reconstruction rows and the error, interleaved so that the machine's load
    falls on both alike."""
    torch.manual_seed(0)
    out = {}
    for rows, inputs in ((1, 2), (1, 1), (8, 1)):
        z, e = torch.randn(rows, model.z_dim), torch.randn(rows, model.e_dim)
        x = torch.rand(inputs, 3, model.resolution, model.resolution) * 2 - 1
        zi, ei = model.encode_tensor(x)
        plain, checked = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.generate_tensor(z, e)
            t1 = time.perf_counter()
            g = model.generate_tensor(torch.cat([z, zi]), torch.cat([e, ei]))
            reconstruction_error(x, g[rows:])
            t2 = time.perf_counter()
            plain.append(t1 - t0)
            checked.append(t2 - t1)
        out[rows * 10 + inputs] = (statistics.median(plain) * 1e3, statistics.median(checked) * 1e3)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--heldout", type=int, default=5000, help="eval_score images")
    parser.add_argument("--cost", action="store_true", help="time the check's added work")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for path in args.models:
        model = load_model(path)
        zoom = float(model.manifest["data"]["zoom"])
        m = overlap(model, heldout_faces(model, args.heldout), real_faces(model.resolution, zoom))
        print(
            f"{Path(path).name} (aligned at zoom {zoom:g}): threshold error "
            f"{m['threshold_error']:.4f} (99th percentile of {model.domain.images} eval_fit)\n"
            f"  held-out synthetic (eval_score): {m['heldout']}, flagged "
            f"{m['heldout_flagged']:.1%}, median error {m['heldout_error_median']:.4f}\n"
            f"  real faces (astronaut + lfw_subset): {m['real']}, flagged {m['real_flagged']:.1%}, "
            f"error min {m['real_error_min']:.4f}, median {m['real_error_median']:.4f}; "
            f"astronaut at percentile {m['astronaut_percentile']:g}\n"
            f"  AUC real vs held-out: reconstruction error {m['auc_error']:.3f}, "
            f"KL to the prior {m['auc_kl']:.3f}"
        )
        if args.cost:
            for key, (plain, checked) in check_cost(model).items():
                rows, inputs = divmod(key, 10)
                print(
                    f"  generate pass, {rows} edit row(s): {plain:.2f} ms; with {inputs} "
                    f"reconstruction row(s) and the error: {checked:.2f} ms "
                    f"(+{checked - plain:.2f} ms)"
                )


if __name__ == "__main__":
    main()
