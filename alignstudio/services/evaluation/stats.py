"""Statistics of a pairwise evaluation, as plain functions of lists (no models, no judges, no files).

- win rate: wins count 1, ties 1/2, losses 0, averaged over the judged prompts; its 95% interval is a
  bootstrap over prompts (`scipy.stats.bootstrap`, BCa, seeded);
- length-controlled win rate (after AlpacaEval 2): a logistic regression of the judgment on the normalized
  length difference, `P(win) = sigmoid(b0 + b1 * tanh((len_model - len_base) / sd))`, fitted by penalized
  maximum likelihood (ties as half a win); the controlled rate is `sigmoid(b0)`, the prediction when both
  answers are equally long. A small L2 penalty on b1 keeps it finite when wins separate perfectly by length.
  Its interval is a seeded percentile bootstrap over prompts, the fit redone on each resample; `extreme_change`
  is AlpacaEval's rule for a controlled rate that moved too far from the raw one to take at face value.
  How this differs from AlpacaEval 2's GLM: docs/judges.md, "Controlled win rates";
- the seed article's pathology checks on a list of responses (verbose, sycophantic, evasive, repetitive,
  degenerate), with its sentence split fixed so a single sentence is not "repetitive";
- perplexity of a causal LM on a text (sliding window), for the alignment-tax check.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence

import numpy as np

OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}

SYCOPHANCY_MARKERS = (
    "great question",
    "excellent question",
    "wonderful question",
    "that's a really",
    "i appreciate",
    "what a thoughtful",
)
EVASION_MARKERS = (
    "it's important to note",
    "it depends on",
    "there are many perspectives",
    "i cannot",
    "i'm not able to",
    "it's worth noting that",
)
PATHOLOGIES = ("verbose", "sycophantic", "evasive", "repetitive", "degenerate")


def scores_of(outcomes: Sequence[str]) -> np.ndarray:
    """win/tie/loss outcomes as 1 / 0.5 / 0."""
    try:
        return np.array([OUTCOME_SCORE[o] for o in outcomes], dtype=float)
    except KeyError as exc:
        raise ValueError(f"outcome must be win, tie or loss, not {exc.args[0]!r}") from None


def win_rate(scores: Sequence[float]) -> float | None:
    scores = np.asarray(scores, dtype=float)
    return float(scores.mean()) if scores.size else None


def bootstrap_ci(
    scores: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float | None, float | None]:
    """Bootstrap confidence interval of the mean score (BCa; percentile where BCa is undefined)."""
    from scipy.stats import bootstrap

    data = np.asarray(scores, dtype=float)
    if data.size < 2:
        return None, None
    if np.ptp(data) == 0:  # every prompt scored the same: the resampled mean can not move
        value = float(data[0])
        return value, value
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = bootstrap(
                (data,),
                np.mean,
                confidence_level=confidence,
                n_resamples=n_resamples,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return None, None


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def length_controlled_win_rate(
    scores: Sequence[float], len_model: Sequence[float], len_base: Sequence[float], *, l2: float = 0.1
) -> dict:
    """The win rate with the length difference regressed out (see the module docstring).

    Returns {"lc_win_rate", "intercept", "length_coef", "length_scale"}; lc_win_rate is None without data.
    A positive length_coef means the judge favours the longer answer.
    """
    from scipy.optimize import minimize

    y = np.asarray(scores, dtype=float)
    diff = np.asarray(len_model, dtype=float) - np.asarray(len_base, dtype=float)
    if y.size == 0:
        return {"lc_win_rate": None, "intercept": None, "length_coef": None, "length_scale": None}
    scale = float(diff.std()) or 1.0
    z = np.tanh(diff / scale)

    def loss(theta):
        b0, b1 = theta
        logits = b0 + b1 * z
        # -sum(y log p + (1-y) log(1-p)), stably: log(1 + e^x) - y x
        value = np.sum(np.logaddexp(0.0, logits) - y * logits) + 0.5 * l2 * b1 * b1
        residual = _sigmoid(logits) - y
        return value, np.array([residual.sum(), (residual * z).sum() + l2 * b1])

    result = minimize(loss, x0=np.zeros(2), jac=True, method="L-BFGS-B")
    b0, b1 = (float(v) for v in result.x)
    return {
        "lc_win_rate": float(_sigmoid(b0)),
        "intercept": round(b0, 6),
        "length_coef": round(b1, 6),
        "length_scale": round(scale, 4),
    }


def length_controlled_interval(
    scores: Sequence[float],
    len_model: Sequence[float],
    len_base: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 500,
    seed: int = 0,
    l2: float = 0.1,
) -> tuple[float | None, float | None]:
    """Bootstrap interval of the length-controlled win rate: prompts resampled, the same penalized fit redone on
    each (scikit-learn's, `style.controlled_fit`: C = 1 / l2 is the same objective, intercept unpenalized, and
    ~10x faster than the L-BFGS fit over 500 rounds); the length scale is the full data's."""
    from .style import controlled_fit

    y = np.asarray(scores, dtype=float)
    if y.size < 2:
        return None, None
    diff = np.asarray(len_model, dtype=float) - np.asarray(len_base, dtype=float)
    design = np.tanh(diff / (float(diff.std()) or 1.0))[:, None]
    if not design.any():  # no length difference at all: nothing to control for, the column would be empty
        design = np.zeros((y.size, 0))
    *_, low, high = controlled_fit(design, y, rounds=n_resamples, seed=seed, confidence=confidence, C=1.0 / l2)
    return low, high


def extreme_change(raw: float | None, controlled: float | None, *, points: float = 10.0, share: float = 4.0) -> bool:
    """AlpacaEval's warning rule (`glm_winrate.get_is_extreme_changes`, in percentage points): the controlled
    rate left the raw one by more than `points` AND by more than 1/`share` of the room on that side (of the raw
    rate below it, of 100 - raw above it). Written out: AlpacaEval itself is not a dependency."""
    if raw is None or controlled is None:
        return False
    prev, new = 100.0 * raw, 100.0 * controlled
    too_small = new < min(prev - prev / share, prev - points)
    too_large = new > max(prev + (100.0 - prev) / share, prev + points)
    return too_small or too_large


def words(text: str) -> int:
    return len((text or "").split())


def pathology_flags(response: str, *, verbose_words: int = 400) -> dict[str, bool]:
    """The seed's five checks on one response."""
    text = response or ""
    lowered = text.lower().strip()
    tokens = text.split()
    n_words = len(tokens)
    sentences = [s.strip().lower() for s in re.split(r"[.!?\n]+", text) if s.strip()]
    return {
        "verbose": n_words > verbose_words,
        "sycophantic": any(lowered.startswith(m) for m in SYCOPHANCY_MARKERS),
        "evasive": sum(m in lowered for m in EVASION_MARKERS) >= 2,
        "repetitive": len(sentences) > 1 and len(set(sentences)) < 0.7 * len(sentences),
        "degenerate": n_words < 5 or len(set(tokens)) < 0.3 * n_words,
    }


def pathology_counts(responses: Sequence[str], *, verbose_words: int = 400) -> dict[str, int]:
    counts = dict.fromkeys(PATHOLOGIES, 0)
    for response in responses:
        for name, flagged in pathology_flags(response, verbose_words=verbose_words).items():
            counts[name] += int(flagged)
    return counts
