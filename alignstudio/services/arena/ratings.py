"""Leaderboard ratings: Bradley-Terry fits of battles between model versions, raw and style-controlled, with
bootstrap intervals.

A battle is (model_a, model_b, score of A) with score 1 (A won), 0 (B won) or 0.5 (tie; counted as half a
win each way, as Chatbot Arena does). The raw rating is a logistic regression of the outcome on model
indicators (+1 for A, -1 for B). The style-controlled rating adds, as Chatbot Arena's style control does,
covariates for the difference in length and markdown (headers, bold, list items) between the two answers
(`evaluation.style`); its model coefficients are the ratings had both answers the same style, and the style
coefficients say how much voters reward each element. Both are fitted with scikit-learn (`style.fit_logistic`).
Ratings are on the Elo scale (400 / ln 10 per logit): the anchor model is held at the anchor rating, or, with
no anchor, the mean of all models is (1000 by default, this module's earlier convention). Intervals are
percentiles of a seeded bootstrap over battles (500 rounds by default: Arena-Hard found about 500 needed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...core.settings import check_bounds, setting
from ..evaluation.style import FEATURE_TITLES, StyleFeatures, fit_logistic, scaled, style_differences

ELO_SCALE = 400.0 / math.log(10.0)
BASE = 1000.0
TOO_FEW = "too few votes"
ANCHOR = "anchor"


@dataclass(frozen=True)
class RatingSettings:
    """How the Arena leaderboard is computed."""

    bootstrap_rounds: int = setting(
        500, "bootstrap rounds of the 95% intervals", label="Bootstrap rounds", minimum=500, maximum=10_000
    )
    seed: int = setting(0, "seed of the bootstrap (the same votes give the same intervals)", label="Seed")
    anchor: str = setting(
        "", "the model held at the anchor rating (empty: the mean of all models is)", label="Anchor model"
    )
    anchor_rating: float = setting(BASE, "the anchor's rating", label="Anchor rating")
    min_votes: int = setting(
        10,
        "a model with fewer votes shows 'too few votes' instead of an interval",
        label="Votes needed for an interval",
        minimum=2,
        maximum=10_000,
    )

    def __post_init__(self):
        check_bounds(self, "bootstrap_rounds", "min_votes")


@dataclass(frozen=True)
class Battle:
    model_a: str
    model_b: str
    score: float  # of A: 1 win, 0.5 tie, 0 loss
    style_a: StyleFeatures | None = None  # of A's answer; None where the answers are unknown
    style_b: StyleFeatures | None = None


@dataclass
class Leaderboard:
    """Raw and style-controlled ratings side by side (`table`, numbers; best raw rating first) and the style
    coefficients (`coefficients`: logits per standard deviation of the normalized difference, with intervals)."""

    table: pd.DataFrame
    coefficients: pd.DataFrame
    anchor: str  # the anchored model, "" where the mean is held at the anchor rating
    anchor_rating: float
    rounds: int
    min_votes: int
    anchor_missing: bool = False  # an anchor was asked for that has no votes: the mean is held instead

    def display(self) -> pd.DataFrame:
        """The table as the Arena tab shows it: intervals as text, "too few votes" below the vote threshold."""
        columns = ["model", "rating", "95% CI", "style-controlled", "95% CI (style)", "votes", "wins / ties / losses"]
        rows = []
        for row in self.table.itertuples(index=False):
            rows.append(
                [
                    row.model,
                    row.rating,
                    self._interval(row, row.ci_low, row.ci_high),
                    "" if math.isnan(row.style_rating) else row.style_rating,
                    self._interval(row, row.style_ci_low, row.style_ci_high),
                    row.votes,
                    f"{row.wins} / {row.ties} / {row.losses}",
                ]
            )
        return pd.DataFrame(rows, columns=columns)

    def _interval(self, row, low, high) -> str:
        if row.model == self.anchor:
            return ANCHOR
        if row.votes < self.min_votes:
            return TOO_FEW
        if math.isnan(low):
            return ""
        return f"[{low:.1f}, {high:.1f}]"

    def summary(self) -> str:
        """The notes under the table (markdown; numbers and feature names only)."""
        held = f"the model marked '{ANCHOR}'" if self.anchor else "the mean of all models"
        if self.anchor_missing:
            held += " (the anchor model has no votes yet)"
        lines = [
            f"Elo scale; {held} is held at {self.anchor_rating:g}. 95% intervals from {self.rounds} bootstrap "
            f"rounds; a model with fewer than {self.min_votes} votes shows '{TOO_FEW}'. The style-controlled "
            "rating is the rating had both answers the same length and markdown."
        ]
        if not self.coefficients.empty:
            lines += [
                "",
                "**Style coefficients** (logit per standard deviation of `(a - b) / (a + b + 1)`; "
                "positive: voters favour the answer with more of it)",
                "",
                "| feature | coefficient | 95% CI |",
                "|---|---|---|",
            ]
            for row in self.coefficients.itertuples(index=False):
                lines.append(f"| {row.feature} | {row.coefficient:+.3f} | [{row.ci_low:+.3f}, {row.ci_high:+.3f}] |")
        return "\n".join(lines)


def _model_design(battles: list[Battle], index: dict[str, int]) -> np.ndarray:
    design = np.zeros((len(battles), len(index)))
    rows = np.arange(len(battles))
    design[rows, [index[b.model_a] for b in battles]] = 1.0
    design[rows, [index[b.model_b] for b in battles]] = -1.0
    return design


def design_matrix(battles: list[Battle]) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, float]]:
    """The style-controlled fit's design: one column per model (+1 for A, -1 for B, models sorted by name),
    then the scaled style differences A - B of each feature that varies (see `evaluation.style`). Returns
    (design, scores of A, models, {feature: scale} of the style columns in order)."""
    models = sorted({m for b in battles for m in (b.model_a, b.model_b)})
    features, scales = scaled(style_differences([b.style_a for b in battles], [b.style_b for b in battles]))
    design = np.hstack([_model_design(battles, {m: i for i, m in enumerate(models)}), features])
    return design, np.array([b.score for b in battles], dtype=float), models, scales


def _elo(theta: np.ndarray, anchor: int | None, anchor_rating: float) -> np.ndarray:
    """Logit strengths as ratings: the anchor model (or, with none, the mean) at `anchor_rating`."""
    zero = theta[anchor] if anchor is not None else theta.mean()
    return anchor_rating + ELO_SCALE * (theta - zero)


def _bootstrap(fit, n: int, rounds: int, seed: int) -> np.ndarray:
    """fit(weights) for `rounds` resamples of the n battles (multinomial counts as weights; seeded)."""
    rng = np.random.default_rng(seed)
    return np.array([fit(rng.multinomial(n, np.full(n, 1.0 / n))) for _ in range(rounds)])


def _records(battles: list[Battle], model: str) -> dict:
    as_a = [b.score for b in battles if b.model_a == model]
    as_b = [1.0 - b.score for b in battles if b.model_b == model]
    scores = as_a + as_b
    return {
        "votes": len(scores),
        "wins": sum(s == 1.0 for s in scores),
        "ties": sum(s == 0.5 for s in scores),
        "losses": sum(s == 0.0 for s in scores),
    }


def _as_battles(battles) -> list[Battle]:
    out = []
    for battle in battles:
        battle = battle if isinstance(battle, Battle) else Battle(*battle)
        if battle.model_a != battle.model_b:
            out.append(battle)
    return out


def _fit_ratings(design, scores, models, anchor, anchor_rating, rounds, seed):
    """(ratings, coefficients beyond the models, percentile bands of both) of one design matrix."""
    n_models = len(models)

    def fit(weights=None):
        coef, _ = fit_logistic(design, scores, weights=weights)
        return np.concatenate([_elo(coef[:n_models], anchor, anchor_rating), coef[n_models:]])

    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # hundreds of tiny fits: BLAS threads would only wait on each other
        point = fit()
        samples = _bootstrap(fit, len(scores), rounds, seed) if rounds else point[None, :]
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return point, low, high


def leaderboard(battles, settings: RatingSettings = RatingSettings()) -> Leaderboard:
    """Raw and style-controlled Bradley-Terry ratings of every model in `battles` (Battle, or (model_a,
    model_b, score) without answers: then only raw ratings). The style fit uses the battles whose answers are
    known, with each style feature that varies among them."""
    s = settings
    return rate(
        battles,
        rounds=s.bootstrap_rounds,
        seed=s.seed,
        anchor=s.anchor,
        anchor_rating=s.anchor_rating,
        min_votes=s.min_votes,
    )


def rate(
    battles, *, rounds: int, seed: int = 0, anchor: str = "", anchor_rating: float = BASE, min_votes: int = 10
) -> Leaderboard:
    """`leaderboard` with its settings as arguments and any number of bootstrap rounds (0: point estimates
    only, the intervals collapse onto them), for callers that need no intervals."""
    anchor_name = anchor
    battles = _as_battles(battles)
    columns = ["model", "rating", "ci_low", "ci_high", "style_rating", "style_ci_low", "style_ci_high"]
    columns += ["votes", "wins", "ties", "losses"]
    empty_coefficients = pd.DataFrame(columns=["feature", "coefficient", "ci_low", "ci_high", "scale"])
    models = sorted({m for b in battles for m in (b.model_a, b.model_b)})
    missing = bool(anchor_name) and anchor_name not in models
    anchor_name = "" if missing else anchor_name
    board = Leaderboard(
        pd.DataFrame(columns=columns), empty_coefficients, anchor_name, anchor_rating, rounds, min_votes, missing
    )
    if not battles:
        return board
    index = {m: i for i, m in enumerate(models)}
    anchor = index.get(anchor_name)
    scores = np.array([b.score for b in battles], dtype=float)
    fit_args = (anchor, anchor_rating, rounds, seed)
    raw, raw_low, raw_high = _fit_ratings(_model_design(battles, index), scores, models, *fit_args)

    styled = [b for b in battles if b.style_a is not None and b.style_b is not None]
    style = np.full((3, len(models)), np.nan)
    if styled:
        design, style_scores, style_models, scales = design_matrix(styled)
        style_index = {m: i for i, m in enumerate(style_models)}
        style_fit_args = (style_index.get(anchor_name), *fit_args[1:])
        fitted = _fit_ratings(design, style_scores, style_models, *style_fit_args)
        for row, values in zip(style, fitted):
            row[[index[m] for m in style_models]] = values[: len(style_models)]
        point, low, high = (values[len(style_models) :] for values in fitted)
        board.coefficients = pd.DataFrame(
            [
                {"feature": FEATURE_TITLES[name], "coefficient": p, "ci_low": lo, "ci_high": hi, "scale": s}
                for (name, s), p, lo, hi in zip(scales.items(), point, low, high)
            ],
            columns=empty_coefficients.columns,
        ).round({"coefficient": 4, "ci_low": 4, "ci_high": 4, "scale": 4})

    rows = []
    for model, i in index.items():
        rows.append(
            {
                "model": model,
                "rating": raw[i],
                "ci_low": raw_low[i],
                "ci_high": raw_high[i],
                "style_rating": style[0][i],
                "style_ci_low": style[1][i],
                "style_ci_high": style[2][i],
                **_records(battles, model),
            }
        )
    table = pd.DataFrame(rows, columns=columns).sort_values("rating", ascending=False).reset_index(drop=True)
    board.table = table.round({c: 1 for c in columns[1:7]})
    return board
