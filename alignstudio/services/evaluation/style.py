"""Style of an answer, and results with style held equal: the one definition for the Arena's style-controlled
ratings, the evaluation report's style-controlled win rate and a judge's report card.

- `style_features(text)`: length in words and the markdown elements Chatbot Arena controls for (headers, bold
  spans, list items), counted by parsing the markdown (markdown-it-py, CommonMark), so a `#` or `-` inside a
  code block or in the middle of a line is not counted;
- `style_differences`: per feature, `(a - b) / (a + b + 1)` as Chatbot Arena normalizes it (a ratio, so 20
  against 10 words weighs as 200 against 100), then scaled to unit standard deviation over the comparisons. It
  is not centred (Chatbot Arena also subtracts the mean): 0 must mean "equal style", the point the
  controlled figures are predicted at;
- `fit_logistic`: a scikit-learn logistic regression on outcomes that may be ties (1 / 0.5 / 0), a tie counted
  as half a win each way, as Chatbot Arena and AlpacaEval count it;
- `style_controlled_win_rate`: the win rate against the base at equal style, `sigmoid(intercept)` of a logistic
  regression of the verdict on the style differences, with a seeded bootstrap interval over prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from functools import lru_cache

import numpy as np

STYLE_FEATURES = ("words", "headers", "bold", "list_items")
FEATURE_TITLES = {"words": "length (words)", "headers": "headers", "bold": "bold", "list_items": "list items"}


@dataclass(frozen=True)
class StyleFeatures:
    words: int
    headers: int
    bold: int
    list_items: int

    def vector(self) -> np.ndarray:
        return np.array(astuple(self), dtype=float)

    @property
    def markdown(self) -> int:
        """Markdown elements of any kind (a judge's "prefers more markdown" compares these)."""
        return self.headers + self.bold + self.list_items


assert tuple(f.name for f in fields(StyleFeatures)) == STYLE_FEATURES


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def style_features(text: str) -> StyleFeatures:
    """Words (whitespace-separated, as the evaluation report counts them) and markdown elements of one answer."""
    text = text or ""
    headers = bold = list_items = 0
    for token in _markdown().parse(text):
        if token.type == "heading_open":
            headers += 1
        elif token.type == "list_item_open":
            list_items += 1
        elif token.type == "inline":
            bold += sum(child.type == "strong_open" for child in token.children or [])
    return StyleFeatures(len(text.split()), headers, bold, list_items)


def style_differences(a: Sequence[StyleFeatures], b: Sequence[StyleFeatures]) -> np.ndarray:
    """(n, 4) array: per comparison and feature, (a - b) / (a + b + 1)."""
    if not len(a):
        return np.zeros((0, len(STYLE_FEATURES)))
    va = np.array([f.vector() for f in a])
    vb = np.array([f.vector() for f in b])
    return (va - vb) / (va + vb + 1.0)


def scaled(differences: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """The differences divided by their standard deviation, keeping only features that vary (a feature no
    answer uses carries no information and would make the fit singular); {feature: scale} of those kept."""
    scale = differences.std(axis=0) if len(differences) else np.zeros(len(STYLE_FEATURES))
    kept = [i for i, s in enumerate(scale) if s > 1e-12]
    return differences[:, kept] / scale[kept], {STYLE_FEATURES[i]: float(scale[i]) for i in kept}


def fit_logistic(
    design: np.ndarray,
    scores: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    intercept: bool = False,
    C: float = 500.0,
) -> tuple[np.ndarray, float]:
    """(coefficients, intercept) of a logistic regression of `scores` (1 win, 0.5 tie, 0 loss) on `design`.

    Each comparison enters twice, as a win weighted by its score and as a loss weighted by 1 - score, which is
    the Bernoulli likelihood of a fractional outcome. `C` is scikit-learn's inverse L2 strength (np.inf: none);
    the default keeps a model that won every vote finite while moving nothing else measurably.
    """
    from sklearn.linear_model import LogisticRegression

    n, columns = design.shape
    if columns == 0:  # nothing varies: an all-zero column stands in, as scikit-learn needs one feature
        design = np.zeros((n, 1))
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    X = np.vstack([design, design])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    w = np.concatenate([weights * scores, weights * (1.0 - scores)])
    keep = w > 0
    if len(set(y[keep])) < 2:  # every comparison went one way: the fit needs both outcomes, so add a
        X, y, w = np.vstack([X, np.zeros((1, X.shape[1]))]), np.append(y, 1 - y[keep][0]), np.append(w, 1e-6)
        keep = np.append(keep, True)  # vanishing opposite one at the neutral point
    # identical rows (the same pair of models with the same outcome, in a raw rating) enter once with their
    # summed weight: the same likelihood, and a bootstrap of hundreds of fits stays fast
    rows, inverse = np.unique(np.column_stack([X[keep], y[keep]]), axis=0, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=w[keep], minlength=len(rows))
    # Newton-Cholesky: scikit-learn's solver for many rows and few columns (models plus four features)
    model = LogisticRegression(
        C=C, l1_ratio=0.0, fit_intercept=intercept, solver="newton-cholesky", tol=1e-8, max_iter=1000
    )
    model.fit(rows[:, :-1], rows[:, -1], sample_weight=summed)
    return model.coef_[0][:columns].copy(), float(model.intercept_[0]) if intercept else 0.0


def newton_intercept(
    design: np.ndarray, scores: np.ndarray, weights: np.ndarray, C: float, start: np.ndarray | None = None
) -> float:
    """The intercept `fit_logistic(design, scores, weights=weights, intercept=True, C=C)` finds (the same
    penalized likelihood and its opposite-outcome guard), by damped Newton steps in numpy. Hand-written for the
    bootstrap only: its 500 refits took 12 ms each through scikit-learn's input checks (this loaded 2-core host),
    about 1 ms each here; `tests/test_evaluation_controlled.py` checks it against scikit-learn. `start`:
    (intercept, coefficients) to begin from, the full data's fit for a resample (fewer steps)."""
    X = np.column_stack([np.ones(len(scores)), design])
    y, w = np.asarray(scores, dtype=float), np.asarray(weights, dtype=float)
    won, lost = float(w @ y), float(w @ (1.0 - y))
    if min(won, lost) <= 0:  # one outcome only: fit_logistic's vanishing opposite row at the neutral point
        X, y, w = np.vstack([X, np.eye(1, X.shape[1])]), np.append(y, 0.0 if lost <= 0 else 1.0), np.append(w, 1e-6)
    penalty = np.full(X.shape[1], 1.0 / C)
    penalty[0] = 0.0  # the intercept is not penalized, as in scikit-learn
    ridge = np.diag(penalty) + 1e-12 * np.eye(X.shape[1])

    def objective(beta):
        eta = X @ beta
        return float(w @ (np.logaddexp(0.0, eta) - y * eta) + 0.5 * penalty @ (beta * beta))

    beta = np.zeros(X.shape[1]) if start is None else np.asarray(start, dtype=float).copy()
    value = objective(beta)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        gradient = X.T @ (w * (p - y)) + penalty * beta
        hessian = (X * (w * p * (1.0 - p))[:, None]).T @ X + ridge
        step = np.linalg.solve(hessian, gradient)
        if np.abs(step).max() < 1e-8:  # Newton converges quadratically: this is well past scikit-learn's tol
            break
        t, slack = 1.0, 1e-12 * max(1.0, abs(value))
        while t > 1e-6 and objective(beta - t * step) > value + slack:  # backtracking keeps each step downhill
            t /= 2
        beta = beta - t * step
        value = objective(beta)
    return float(beta[0])


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def controlled_fit(
    design: np.ndarray, scores: np.ndarray, *, rounds: int, seed: int, confidence: float, C: float
) -> tuple[np.ndarray, float, float | None, float | None]:
    """(coefficients, intercept, low, high): the logistic fit of `scores` on `design` with an intercept, and the
    percentile interval of `sigmoid(intercept)` (the rate at a zero design row) over `rounds` seeded bootstrap
    resamples of the rows, each refit (prompts resampled: multinomial counts are the rows' weights). The style-
    and the length-controlled win rates (`stats.length_controlled_interval`) both take their interval here."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    rates = []
    with threadpool_limits(1):  # hundreds of tiny fits: BLAS threads would only wait on each other
        coefficients, b0 = fit_logistic(design, scores, intercept=True, C=C)
        start = np.concatenate([[b0], coefficients])
        for _ in range(rounds):
            counts = rng.multinomial(len(scores), np.full(len(scores), 1.0 / len(scores)))
            rates.append(_sigmoid(newton_intercept(design, scores, counts, C, start=start)))
    if not rates:
        return coefficients, b0, None, None
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(rates, [tail, 100 - tail])
    return coefficients, b0, float(low), float(high)


def style_controlled_win_rate(
    scores: Sequence[float],
    model_answers: Sequence[str],
    base_answers: Sequence[str],
    *,
    bootstrap_rounds: int = 500,
    seed: int = 0,
    confidence: float = 0.95,
    C: float = 10.0,
) -> dict:
    """The model's win rate against the base had both answers the same style (length, headers, bold, list items).

    `scores` are the judged prompts' outcomes for the model (1 win, 0.5 tie, 0 loss), aligned with the two
    answer lists. Fits `P(win) = sigmoid(b0 + sum_k b_k * d_k)` on the scaled style differences (model minus
    base, see the module docstring); the controlled rate is `sigmoid(b0)`, the prediction at d = 0. The L2 term
    (`C`, as scikit-learn's; the intercept is not penalized) keeps it finite when style separates wins from
    losses perfectly. Returns {"sc_win_rate", "ci", "coefficients" {feature: b_k per standard deviation},
    "scales" {feature: standard deviation of its normalized difference}, "n"}; sc_win_rate is None without
    data.
    """
    y = np.asarray(scores, dtype=float)
    if not (len(y) == len(model_answers) == len(base_answers)):
        raise ValueError("scores, model answers and base answers must have the same length")
    if y.size == 0:
        return {"sc_win_rate": None, "ci": [None, None], "coefficients": {}, "scales": {}, "n": 0}
    differences = style_differences(
        [style_features(t) for t in model_answers], [style_features(t) for t in base_answers]
    )
    design, scales = scaled(differences)
    coefficients, b0, low, high = controlled_fit(
        design, y, rounds=bootstrap_rounds, seed=seed, confidence=confidence, C=C
    )
    return {
        "sc_win_rate": _sigmoid(b0),
        "ci": [low, high],
        "coefficients": {name: float(c) for name, c in zip(scales, coefficients)},
        "scales": scales,
        "n": int(y.size),
    }
