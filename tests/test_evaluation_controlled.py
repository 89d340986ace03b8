"""The report's win rate raw, length-controlled and style-controlled, side by side with their intervals, the style
coefficients and AlpacaEval's warning when a controlled rate is far from the raw one; older reports still load."""

import json

import numpy as np
import pytest

from alignstudio.core.formats import PromptItem
from alignstudio.services.evaluation import (
    CONTROLLED_BOOTSTRAP_ROUNDS,
    EvalSettings,
    evaluate,
    load_report,
    save_report,
    style,
    summary_markdown,
)
from alignstudio.services.evaluation import stats as st
from alignstudio.services.judges import make_judge

NEW_RESULT_FIELDS = ("lc_win_rate_ci", "sc_win_rate", "sc_win_rate_ci", "style_model")


class CannedGenerator:
    """A model that answers each prompt with a fixed text (the evaluation's generator interface)."""

    def __init__(self, name: str, answers: dict[str, str]):
        self.name, self.answers = name, answers

    def complete(self, conversations, temperatures, *, top_p, max_new_tokens, seed):
        return [self.answers[c[-1]["content"]] for c in conversations]


def only_longer(n: int = 120, seed: int = 0):
    """Answers of the same words, the model's usually longer (sometimes shorter or equal): the rule judge, which
    counts words, makes it win exactly when it is longer, so at equal length it would win half the time."""
    rng = np.random.default_rng(seed)
    base_len = rng.integers(40, 60, size=n)
    model_len = np.maximum(3, base_len + np.round(rng.normal(12, 20, size=n))).astype(int)
    prompts = [PromptItem([{"role": "user", "content": f"question {i}"}], id=str(i)) for i in range(n)]
    model = {f"question {i}": " ".join(["fact"] * int(k)) for i, k in enumerate(model_len)}
    base = {f"question {i}": " ".join(["fact"] * int(k)) for i, k in enumerate(base_len)}
    return prompts, CannedGenerator("verbose-model", model), CannedGenerator("base", base)


@pytest.fixture(scope="module")
def longer_report():
    prompts, model, base = only_longer()
    return evaluate(model, base, prompts, make_judge("rules"), settings=EvalSettings(perplexity=False, seed=3))


def test_a_model_that_wins_only_by_being_longer_is_even_once_length_or_style_is_held_equal(longer_report):
    r = longer_report.results
    assert r.win_rate > 0.7 and r.win_rate_ci[0] > 0.6  # raw: a clear win
    for rate, (low, high) in ((r.lc_win_rate, r.lc_win_rate_ci), (r.sc_win_rate, r.sc_win_rate_ci)):
        assert abs(rate - 0.5) < 0.1 and low < 0.5 < high and low < rate < high  # controlled: even
    assert r.length_model["length_coef"] > 1 and r.style_model["coefficients"]["words"] > 1
    assert set(r.style_model["coefficients"]) == {"words"}  # plain words: no markdown feature varies
    assert r.style_model["bootstrap_rounds"] == CONTROLLED_BOOTSTRAP_ROUNDS == 500
    # AlpacaEval's rule: both controlled rates moved too far from the raw one, and the report says so first
    assert [w.split(" WIN RATE")[0] for w in longer_report.warnings] == ["LENGTH-CONTROLLED", "STYLE-CONTROLLED"]
    text = summary_markdown(longer_report)
    assert text.startswith("> **LENGTH-CONTROLLED WIN RATE")
    assert f"length-controlled win rate: **{100 * r.lc_win_rate:.1f}%**, 95% CI [" in text
    assert f"style-controlled win rate (length and markdown held equal): **{100 * r.sc_win_rate:.1f}%**" in text
    assert "style coefficients (log-odds per SD, model minus base): length (words) +" in text


def test_controlled_rates_match_raw_when_the_judge_ignores_style():
    prompts, model, base = only_longer(n=80, seed=1)
    report = evaluate(
        model, base, prompts, make_judge("rules"), settings=EvalSettings(perplexity=False, seed=0, limit=80)
    )
    scores = st.scores_of([s["outcome"] for s in report.samples])
    shuffled = np.random.default_rng(5).permutation(scores)  # verdicts that no longer follow the lengths
    answers = [(s["model"], s["baseline"]) for s in report.samples]
    sc = style.style_controlled_win_rate(shuffled, *zip(*answers), bootstrap_rounds=200, seed=0)
    assert sc["sc_win_rate"] == pytest.approx(shuffled.mean(), abs=0.06)


def test_the_bootstrap_refit_finds_scikit_learns_intercept():
    rng = np.random.default_rng(0)
    design = rng.normal(size=(40, 3))
    scores = rng.choice([0.0, 0.5, 1.0], size=40, p=[0.3, 0.2, 0.5])
    for case in range(6):
        counts = rng.multinomial(40, np.full(40, 1 / 40)).astype(float)
        y = np.ones(40) if case == 5 else scores  # the last: every prompt won, the opposite-row guard
        expected = style.fit_logistic(design, y, weights=counts, intercept=True, C=10.0)[1]
        found = style.newton_intercept(design, y, counts, 10.0)
        if case < 5:
            assert found == pytest.approx(expected, abs=2e-3)
        else:  # the likelihood is flat out there: the rates, what the interval is made of, agree
            assert found > 10 and 1 / (1 + np.exp(-found)) == pytest.approx(1 / (1 + np.exp(-expected)), abs=1e-6)


@pytest.mark.parametrize(
    "raw, controlled, warned",
    [(0.5, 0.37, True), (0.5, 0.38, False), (0.5, 0.63, True), (0.5, 0.62, False), (0.2, 0.09, True)]
    + [(0.2, 0.11, False), (0.2, 0.41, True), (0.2, 0.39, False), (0.9, 0.67, True), (0.9, 0.68, False)]
    + [(None, 0.5, False), (0.5, None, False)],
)
def test_alpacaevals_extreme_change_rule_by_hand(raw, controlled, warned):
    # below: past min(raw - raw/4, raw - 10 points); above: past max(raw + (100 - raw)/4, raw + 10 points)
    assert st.extreme_change(raw, controlled) is warned


def test_an_older_report_without_the_controlled_intervals_still_loads(longer_report, tmp_path):
    path = save_report(longer_report, tmp_path / "new.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in NEW_RESULT_FIELDS:
        data["results"].pop(key)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    report = load_report(old)
    assert report.results.sc_win_rate is None and report.results.lc_win_rate == longer_report.results.lc_win_rate
    text = summary_markdown(report)
    assert "(no interval in this older report)" in text
    assert "- style-controlled win rate: not in this older report (evaluate again to get it)" in text
    assert [w.split(" WIN RATE")[0] for w in report.warnings] == ["LENGTH-CONTROLLED"]  # from what it holds
    assert load_report(path).results.sc_win_rate_ci == longer_report.results.sc_win_rate_ci
