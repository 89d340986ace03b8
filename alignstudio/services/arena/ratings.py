"""Leaderboard ratings: a Bradley-Terry fit of battles between model versions, with bootstrap intervals.

A battle is (model_a, model_b, score of A) with score 1 (A won), 0 (B won) or 0.5 (tie; counted as half a
win each way, as Chatbot Arena does). Ratings are on the Elo scale (400 / ln 10 per logit, mean 1000).
The fit is a maximum-likelihood logistic model solved with scipy; a tiny L2 term keeps it finite when a
model won or lost every battle.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.optimize import minimize

ELO_SCALE = 400.0 / math.log(10.0)
BASE = 1000.0


def _fit(index_a: np.ndarray, index_b: np.ndarray, score: np.ndarray, n_models: int, l2: float) -> np.ndarray:
    def loss(theta):
        diff = theta[index_a] - theta[index_b]
        # -log-likelihood of a (fractional) Bernoulli outcome under sigmoid(diff), computed stably
        nll = np.sum(np.logaddexp(0.0, diff) - score * diff)
        grad_diff = 1.0 / (1.0 + np.exp(-diff)) - score
        grad = np.zeros(n_models)
        np.add.at(grad, index_a, grad_diff)
        np.add.at(grad, index_b, -grad_diff)
        return nll + l2 * theta @ theta, grad + 2 * l2 * theta

    result = minimize(loss, np.zeros(n_models), jac=True, method="L-BFGS-B")
    theta = result.x
    return theta - theta.mean()


def bradley_terry(
    battles: list[tuple[str, str, float]], *, bootstrap: int = 200, seed: int = 0, l2: float = 1e-3
) -> pd.DataFrame:
    """Ratings with 95% bootstrap intervals and vote counts, best first."""
    columns = ["model", "rating", "ci_low", "ci_high", "votes", "wins", "ties", "losses"]
    battles = [(a, b, float(s)) for a, b, s in battles if a != b]
    if not battles:
        return pd.DataFrame(columns=columns)
    models = sorted({m for a, b, _ in battles for m in (a, b)})
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index[x] for x, _, _ in battles])
    b = np.array([index[y] for _, y, _ in battles])
    score = np.array([s for _, _, s in battles])
    theta = _fit(a, b, score, len(models), l2)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        pick = rng.integers(0, len(battles), len(battles))
        samples.append(_fit(a[pick], b[pick], score[pick], len(models), l2))
    low, high = np.percentile(np.array(samples), [2.5, 97.5], axis=0) if samples else (theta, theta)
    rows = []
    for model, i in index.items():
        as_a, as_b = a == i, b == i
        wins = int(np.sum(score[as_a] == 1) + np.sum(score[as_b] == 0))
        losses = int(np.sum(score[as_a] == 0) + np.sum(score[as_b] == 1))
        ties = int(np.sum(score[as_a | as_b] == 0.5))
        rows.append(
            {
                "model": model,
                "rating": BASE + ELO_SCALE * theta[i],
                "ci_low": BASE + ELO_SCALE * low[i],
                "ci_high": BASE + ELO_SCALE * high[i],
                "votes": int(np.sum(as_a | as_b)),
                "wins": wins,
                "ties": ties,
                "losses": losses,
            }
        )
    frame = pd.DataFrame(rows, columns=columns).sort_values("rating", ascending=False).reset_index(drop=True)
    return frame.round({"rating": 1, "ci_low": 1, "ci_high": 1})
