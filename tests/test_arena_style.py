"""Style-controlled Bradley-Terry ratings: the fit against statsmodels on the same design matrix, a seeded
simulation of a length-biased voter, the anchor, and "too few votes" instead of a degenerate interval."""

import math
import random

import numpy as np
import pytest
import statsmodels.api as sm

from alignstudio.core.errors import UserError
from alignstudio.services.arena.ratings import (
    ELO_SCALE,
    TOO_FEW,
    Battle,
    RatingSettings,
    design_matrix,
    leaderboard,
    rate,
)
from alignstudio.services.evaluation.style import style_features

QUALITY = {"base": 0.0, "verbose": 0.0, "strong": 1.0}  # logits: "verbose" is no better than the base
WORDS = {"base": (20, 120), "verbose": (80, 300), "strong": (20, 120)}  # but writes longer answers


def _answer(rng: random.Random, model: str) -> str:
    text = " ".join(["word"] * rng.randint(*WORDS[model]))
    if rng.random() < 0.4:
        text = "**Note.** " + text
    if rng.random() < 0.4:
        text += "\n\n- one\n- two"
    if rng.random() < 0.2:
        text = "# Answer\n\n" + text
    return text


def _battles(n: int, seed: int = 0, length_bias: float = 3.0, ties: bool = False) -> list[Battle]:
    """A voter who prefers the longer answer: P(A wins) = sigmoid(quality gap + bias * (a - b) / (a + b + 1))
    in words; markdown changes nothing."""
    rng = random.Random(seed)
    battles = []
    for _ in range(n):
        a, b = rng.sample(sorted(QUALITY), 2)
        style_a, style_b = style_features(_answer(rng, a)), style_features(_answer(rng, b))
        ratio = (style_a.words - style_b.words) / (style_a.words + style_b.words + 1)
        p_a = 1 / (1 + math.exp(-(QUALITY[a] - QUALITY[b] + length_bias * ratio)))
        draw = rng.random()
        score = 0.5 if ties and abs(draw - p_a) < 0.05 else float(draw < p_a)
        battles.append(Battle(a, b, score, style_a, style_b))
    return battles


def test_style_controlled_fit_matches_statsmodels_on_the_same_design():
    battles = _battles(400, seed=3, ties=True)
    assert any(b.score == 0.5 for b in battles)
    design, scores, models, scales = design_matrix(battles)
    assert models == sorted(QUALITY) and design.shape == (400, 3 + len(scales))
    # statsmodels: the same matrix, a tie as half a win each way (each battle twice, weighted), unpenalized;
    # the first model's column is dropped, as the model columns sum to zero (ratings are relative)
    n = len(scores)
    glm = sm.GLM(
        np.concatenate([np.ones(n), np.zeros(n)]),
        np.vstack([design, design])[:, 1:],
        family=sm.families.Binomial(),
        freq_weights=np.concatenate([scores, 1 - scores]),
    ).fit()
    reference = np.concatenate([[0.0], glm.params[: len(models) - 1]])
    board = rate(battles, rounds=0).table.set_index("model")
    ours = np.array([board.loc[m, "style_rating"] for m in models])
    assert np.allclose(ours - ours[0], ELO_SCALE * reference, atol=0.5)  # table ratings are rounded to 0.1
    coefficients = rate(battles, rounds=0).coefficients
    assert np.allclose(coefficients["coefficient"], glm.params[len(models) - 1 :], atol=2e-3)
    assert list(coefficients["feature"]) == ["length (words)", "headers", "bold", "list items"]


def test_length_biased_voter_raw_rating_far_above_base_style_controlled_close():
    board = leaderboard(_battles(360, seed=0), RatingSettings(anchor="base"))
    table = board.table.set_index("model")
    assert board.rounds == 500
    raw_gap = table.loc["verbose", "rating"] - 1000
    style_gap = table.loc["verbose", "style_rating"] - 1000
    assert raw_gap > 100  # wins mostly because it writes longer answers
    assert abs(style_gap) < 0.4 * raw_gap  # with length held equal it is about as good as the base
    assert table.loc["verbose", "style_ci_low"] < 1000 + raw_gap / 2
    assert table.loc["strong", "style_rating"] > 1080  # a model better at equal style keeps its lead
    coefficients = board.coefficients.set_index("feature")
    assert coefficients.loc["length (words)", "ci_low"] > 0.3  # the voter's length preference, found
    for markdown in ("headers", "bold", "list items"):  # and none for markdown, which the voter ignores
        assert coefficients.loc[markdown, "ci_low"] < 0 < coefficients.loc[markdown, "ci_high"]
    assert "Style coefficients" in board.summary() and "length (words)" in board.summary()


def test_anchor_model_is_held_at_the_anchor_rating_and_gaps_do_not_move():
    battles = _battles(150, seed=1)
    by_mean = rate(battles, rounds=20).table.set_index("model")
    assert abs(by_mean["rating"].mean() - 1000) < 0.2 and abs(by_mean["style_rating"].mean() - 1000) < 0.2
    anchored = rate(battles, rounds=20, anchor="strong", anchor_rating=1200).table.set_index("model")
    assert anchored.loc["strong", "rating"] == 1200 and anchored.loc["strong", "style_rating"] == 1200
    gap = lambda t, col: t.loc["verbose", col] - t.loc["base", col]  # noqa: E731
    for column in ("rating", "style_rating"):
        assert abs(gap(anchored, column) - gap(by_mean, column)) < 0.2
    unknown = rate(battles, rounds=0, anchor="no-such-model")  # falls back to the mean, and says so
    assert unknown.anchor == "" and abs(unknown.table["rating"].mean() - 1000) < 0.2
    assert "the anchor model has no votes yet" in unknown.summary()


def test_too_few_votes_instead_of_a_degenerate_interval():
    one = rate([("x", "y", 1.0)], rounds=50, min_votes=10)
    shown = one.display()
    assert list(shown["95% CI"]) == [TOO_FEW, TOO_FEW]
    assert "[" not in " ".join(shown.astype(str).to_numpy().ravel())
    many = rate([("x", "y", 1.0), ("x", "y", 0.0)] * 8, rounds=50, min_votes=10).display()
    assert all(cell.startswith("[") for cell in many["95% CI"])
    anchored = rate([("x", "y", 1.0), ("x", "y", 0.0)] * 8, rounds=50, anchor="y").display().set_index("model")
    assert anchored.loc["y", "95% CI"] == "anchor" and anchored.loc["x", "95% CI"].startswith("[")


def test_rating_settings_ask_for_at_least_500_rounds():
    assert RatingSettings().bootstrap_rounds == 500
    with pytest.raises(UserError, match="bootstrap_rounds"):
        RatingSettings(bootstrap_rounds=100)
