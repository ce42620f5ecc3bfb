"""Low-capacity probes of learned features (paper 5.3): fitted on one held-out split, scored on
the other, so no score is computed on the data its probe was fitted to."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _standardise(fit: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = fit.mean(0), fit.std(0) + 1e-6
    return (fit - mean) / std, (score - mean) / std


def linear_regression_mae(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_score: np.ndarray,
    y_score: np.ndarray,
    ridge: float = 1e-3,
) -> np.ndarray:
    """Mean absolute error per target column of a ridge-regularised linear regression. (F,)"""
    x_fit, x_score = _standardise(x_fit.astype(np.float64), x_score.astype(np.float64))
    a = np.hstack([x_fit, np.ones((len(x_fit), 1))])
    reg = ridge * len(x_fit) * np.eye(a.shape[1])
    reg[-1, -1] = 0.0  # the bias is not penalised
    w = np.linalg.solve(a.T @ a + reg, a.T @ y_fit.astype(np.float64))
    pred = np.hstack([x_score, np.ones((len(x_score), 1))]) @ w
    return np.abs(pred - y_score).mean(0)


def mean_predictor_mae(y_fit: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """The floor every feature must beat: predict the fit split's mean. (F,)"""
    return np.abs(y_fit.mean(0) - y_score).mean(0)


def linear_classifier_accuracy(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_score: np.ndarray,
    y_score: np.ndarray,
    num_classes: int,
    weight_decay: float = 1e-3,
) -> np.ndarray:
    """Per-class accuracy (recall) of a multinomial logistic regression. (num_classes,)"""
    x_fit, x_score = _standardise(x_fit, x_score)
    xf = torch.from_numpy(x_fit).float()
    yf = torch.from_numpy(np.array(y_fit)).long()
    linear = torch.nn.Linear(xf.shape[1], num_classes)
    opt = torch.optim.LBFGS(linear.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(xf), yf)
        loss = loss + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = linear(torch.from_numpy(x_score).float()).argmax(1).numpy()
    return _per_class_recall(pred, y_score, num_classes)


def _per_class_recall(pred: np.ndarray, y_score: np.ndarray, num_classes: int) -> np.ndarray:
    return np.array(
        [
            (pred[y_score == c] == c).mean() if (y_score == c).any() else np.nan
            for c in range(num_classes)
        ]
    )


def _mlp_outputs(
    x_fit: np.ndarray,
    target: torch.Tensor,
    x_score: np.ndarray,
    out_dim: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    steps: int,
    seed: int,
) -> np.ndarray:
    """A two-layer MLP (256 wide) trained by Adam on minibatches of the standardised fit split;
    its outputs on the score split."""
    x_fit, x_score = _standardise(x_fit.astype(np.float64), x_score.astype(np.float64))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    xf = torch.from_numpy(x_fit).float()
    net = torch.nn.Sequential(
        torch.nn.Linear(xf.shape[1], 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, out_dim),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(0, len(xf), (256,), generator=generator)
        loss = loss_fn(net(xf[idx]), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net.eval()(torch.from_numpy(x_score).float()).numpy()


def mlp_regression_mae(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_score: np.ndarray,
    y_score: np.ndarray,
    steps: int = 3000,
    seed: int = 0,
) -> np.ndarray:
    """Mean absolute error per target column of a small MLP: not Table 1's probe, but it says
    whether a factor the linear probe misses is absent from the features or only not linear in
    them. (F,)"""
    target = torch.from_numpy(y_fit).float()
    pred = _mlp_outputs(
        x_fit, target, x_score, target.shape[1], torch.nn.functional.l1_loss, steps, seed
    )
    return np.abs(pred - y_score).mean(0)


def mlp_classifier_accuracy(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_score: np.ndarray,
    y_score: np.ndarray,
    num_classes: int,
    steps: int = 3000,
    seed: int = 0,
) -> np.ndarray:
    """Per-class accuracy (recall) of a small MLP classifier, beside the linear one. (K,)"""
    target = torch.from_numpy(np.array(y_fit)).long()
    logits = _mlp_outputs(
        x_fit, target, x_score, num_classes, torch.nn.functional.cross_entropy, steps, seed
    )
    return _per_class_recall(logits.argmax(1), y_score, num_classes)
