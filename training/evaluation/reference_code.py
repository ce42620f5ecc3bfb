"""Where e^r lies among the e codes of held-out unlabelled images.

Not in the paper. The paper never runs the e-encoder on a reference image: e^r is a free vector,
and the generator may treat it as a code apart, reading z one way under e^r and another way
under every unlabelled e (docs/experiments.md, session 20). Its Mahalanobis distance from a
Gaussian fitted to the unlabelled codes, beside the codes' own distances, says how far apart.
"""

from __future__ import annotations

import numpy as np

from model.inference import ReferenceVAE

# A ridge on the codes' covariance: some e dimensions of a trained model barely vary.
RIDGE = 1e-6


def mahalanobis(points: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Distances of `points` (N, D) from the Gaussian fitted to `codes` (M, D)."""
    mean = codes.mean(0)
    cov = np.cov(codes.T.astype(np.float64)) + RIDGE * np.eye(codes.shape[1])
    centred = points.astype(np.float64) - mean
    return np.sqrt(np.einsum("nd,nd->n", centred @ np.linalg.inv(cov), centred))


def reference_code_position(model: ReferenceVAE, e: np.ndarray) -> dict[str, float]:
    """`model`'s e^r's distance from the e codes `e` (N, e_dim) of held-out unlabelled images,
    and the codes' own median and 99th percentile."""
    e_ref = model.net.e_ref.detach().float().cpu().numpy()[None]
    # One fit of the Gaussian for e^r and the codes alike.
    distances = mahalanobis(np.vstack([e_ref, e]), e)
    own = distances[1:]
    return {
        "e_ref_mahalanobis": float(distances[0]),
        "codes_median": float(np.median(own)),
        "codes_p99": float(np.percentile(own, 99)),
    }
