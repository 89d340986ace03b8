"""The one definition of an answer's style, and the style-controlled win rate against the base."""

import math
import random

import numpy as np
import pytest
import statsmodels.api as sm

from alignstudio.services.evaluation.style import (
    StyleFeatures,
    scaled,
    style_controlled_win_rate,
    style_differences,
    style_features,
)


def test_style_features_count_markdown_as_rendered():
    text = (
        "# Plan\n\nSome **bold** and __also bold__ words.\n\n"
        "1. first\n2. second with **more**\n   - nested\n\n"
        "## Code\n\n```\n# not a header\n- not a list item\n**not bold**\n```\n"
        "A line with a - dash and a # hash is plain text."
    )
    features = style_features(text)
    assert features == StyleFeatures(words=len(text.split()), headers=2, bold=3, list_items=3)
    assert features.markdown == 8
    assert style_features("") == StyleFeatures(0, 0, 0, 0)
    assert style_features("* a\n* b\n+ c").list_items == 3


def test_style_differences_are_chatbot_arena_ratios_scaled_not_centred():
    a = [StyleFeatures(30, 1, 0, 4), StyleFeatures(10, 0, 0, 0)]
    b = [StyleFeatures(9, 0, 0, 4), StyleFeatures(10, 0, 0, 2)]
    differences = style_differences(a, b)
    assert differences[0].tolist() == pytest.approx([21 / 40, 1 / 2, 0, 0])
    assert differences[1].tolist() == pytest.approx([0, 0, 0, -2 / 3])
    design, scales = scaled(differences)
    assert list(scales) == ["words", "headers", "list_items"]  # bold never varies: no column
    assert design[:, 0].tolist() == pytest.approx([21 / 40 / scales["words"], 0])  # 0 stays "equal style"


def _judged(n: int, *, quality: float, length_bias: float, seed: int = 0):
    """Verdicts of a judge who likes long answers, for a model that writes longer ones than the base."""
    rng = random.Random(seed)
    scores, model_answers, base_answers = [], [], []
    for _ in range(n):
        words_model, words_base = rng.randint(40, 240), rng.randint(20, 120)
        ratio = (words_model - words_base) / (words_model + words_base + 1)
        p_win = 1 / (1 + math.exp(-(quality + length_bias * ratio)))
        draw = rng.random()
        scores.append(0.5 if abs(draw - p_win) < 0.03 else float(draw < p_win))
        model_answers.append(" ".join(["w"] * words_model) + ("\n\n- a\n- b" if rng.random() < 0.5 else ""))
        base_answers.append(" ".join(["w"] * words_base) + ("\n\n- a" if rng.random() < 0.5 else ""))
    return scores, model_answers, base_answers


def test_style_controlled_win_rate_removes_a_length_preference():
    scores, model_answers, base_answers = _judged(300, quality=0.0, length_bias=4.0)
    result = style_controlled_win_rate(scores, model_answers, base_answers, bootstrap_rounds=200)
    raw = float(np.mean(scores))
    assert raw > 0.7  # wins by length alone
    assert abs(result["sc_win_rate"] - 0.5) < 0.1 and result["ci"][0] < 0.5 < result["ci"][1]
    assert result["coefficients"]["words"] > 0.5 and result["n"] == 300
    assert set(result["coefficients"]) == {"words", "list_items"}  # no headers or bold in any answer


def test_style_controlled_win_rate_is_the_intercept_of_the_same_logistic_regression():
    scores, model_answers, base_answers = _judged(200, quality=1.0, length_bias=2.0, seed=4)
    result = style_controlled_win_rate(scores, model_answers, base_answers, bootstrap_rounds=0, C=np.inf)
    design, _ = scaled(
        style_differences([style_features(t) for t in model_answers], [style_features(t) for t in base_answers])
    )
    y = np.asarray(scores)
    glm = sm.GLM(
        np.concatenate([np.ones(len(y)), np.zeros(len(y))]),
        sm.add_constant(np.vstack([design, design])),
        family=sm.families.Binomial(),
        freq_weights=np.concatenate([y, 1 - y]),
    ).fit()
    assert result["sc_win_rate"] == pytest.approx(1 / (1 + math.exp(-glm.params[0])), abs=1e-4)
    assert list(result["coefficients"].values()) == pytest.approx(list(glm.params[1:]), abs=1e-3)
    assert result["sc_win_rate"] > 0.65  # better at equal length too


def test_style_controlled_win_rate_edges():
    assert style_controlled_win_rate([], [], [])["sc_win_rate"] is None
    same = style_controlled_win_rate([1.0, 0.0, 1.0, 0.5], ["a b"] * 4, ["c d"] * 4, bootstrap_rounds=0)
    assert same["sc_win_rate"] == pytest.approx(0.625, abs=1e-3) and same["coefficients"] == {}
    all_won = style_controlled_win_rate([1.0] * 5, ["a b c"] * 5, ["a", "a b", "a", "a b", "a"], bootstrap_rounds=20)
    assert all_won["sc_win_rate"] > 0.9 and math.isfinite(all_won["coefficients"]["words"])
    with pytest.raises(ValueError, match="same length"):
        style_controlled_win_rate([1.0], ["a"], [])


def test_the_reports_lc_win_rate_agrees_with_alpacaevals_glm_without_its_difficulty_term():
    """AlpacaEval 2's GLM is `tanh(std_delta_len) + instruction_difficulty + model term`; the LC win rate is its
    mean prediction at zero length difference. One model against one base can not estimate an instruction's
    difficulty (AlpacaEval takes it from its leaderboard's models), so the report's LC drops that term; with
    it gone, the report's L2-penalized fit must agree with the unpenalized GLM on the same data."""
    from alignstudio.services.evaluation import stats
    from alignstudio.services.evaluation.style import fit_logistic

    for quality, bias in ((0.0, 4.0), (1.0, 2.0), (0.0, 0.0)):
        scores, model_answers, base_answers = _judged(300, quality=quality, length_bias=bias, seed=1)
        len_model, len_base = [stats.words(t) for t in model_answers], [stats.words(t) for t in base_answers]
        report = stats.length_controlled_win_rate(scores, len_model, len_base)
        delta = np.asarray(len_model, dtype=float) - np.asarray(len_base, dtype=float)
        tanh_delta = np.tanh(delta / delta.std(ddof=1))[:, None]  # as AlpacaEval: pandas std, not centred
        _, intercept = fit_logistic(tanh_delta, np.asarray(scores), intercept=True, C=np.inf)
        assert report["lc_win_rate"] == pytest.approx(1 / (1 + math.exp(-intercept)), abs=0.01)
