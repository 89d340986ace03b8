"""Evaluation statistics on constructed verdict lists: win rate, bootstrap interval, ties from inconsistent
orders, the length-controlled win rate, the seed's pathology checks, perplexity."""

import math

import numpy as np
import pytest

from alignstudio.services.evaluation import stats as st
from alignstudio.services.judges.protocol import combine
from alignstudio.training.drift import text_perplexity


def outcomes_from_orders(orders):
    """(first, swapped-order verdict) per prompt -> win/tie/loss from the model's side (the model is A)."""
    return [{"A": "win", "B": "loss", "tie": "tie"}[combine(first, second)[0]] for first, second in orders]


def test_win_rate_counts_ties_half_and_inconsistent_orders_are_ties():
    orders = [
        ("A", "B"),  # model wins in both orders -> win
        ("A", "A"),  # the judge picked the first position both times -> tie
        ("B", "A"),  # baseline wins in both orders -> loss
        ("tie", "tie"),  # tie
        ("A", "tie"),
    ]  # decisive one way only -> tie
    outcomes = outcomes_from_orders(orders)
    assert outcomes == ["win", "tie", "loss", "tie", "tie"]
    scores = st.scores_of(outcomes)
    assert st.win_rate(scores) == pytest.approx((1 + 0.5 * 3) / 5)
    assert st.win_rate([]) is None
    with pytest.raises(ValueError):
        st.scores_of(["draw"])


def test_bootstrap_interval_brackets_the_win_rate_and_narrows_with_more_prompts():
    rng = np.random.default_rng(0)
    small = st.scores_of(rng.choice(["win", "tie", "loss"], size=30, p=[0.6, 0.1, 0.3]))
    big = st.scores_of(rng.choice(["win", "tie", "loss"], size=600, p=[0.6, 0.1, 0.3]))
    low, high = st.bootstrap_ci(small, n_resamples=1000)
    assert low < st.win_rate(small) < high and 0 <= low and high <= 1
    big_low, big_high = st.bootstrap_ci(big, n_resamples=1000)
    assert big_high - big_low < (high - low) / 2
    assert big_low < 0.65 < big_high  # the true rate 0.6 + 0.1 / 2
    assert st.bootstrap_ci(small, n_resamples=1000) == (low, high)  # seeded: reproducible
    assert st.bootstrap_ci(st.scores_of(["win"] * 10)) == (1.0, 1.0)  # nothing to resample
    assert st.bootstrap_ci(st.scores_of(["win"])) == (None, None)


def length_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    len_base = rng.integers(40, 60, size=n).astype(float)
    diff = rng.normal(20, 30, size=n)  # the model is usually longer
    return len_base + diff, len_base, diff


def test_length_controlled_rate_discounts_wins_that_come_from_length():
    len_model, len_base, diff = length_data()
    scores = (diff > 0).astype(float)  # the judge simply prefers the longer answer
    raw = st.win_rate(scores)
    lc = st.length_controlled_win_rate(scores, len_model, len_base)
    assert raw > 0.7
    assert lc["lc_win_rate"] < raw - 0.15 and abs(lc["lc_win_rate"] - 0.5) < 0.15
    assert lc["length_coef"] > 0


def test_length_controlled_rate_credits_wins_despite_being_longer():
    len_model, len_base, diff = length_data(seed=1)
    scores = (diff < 0).astype(float)  # the judge prefers the shorter answer; the model is usually longer
    raw = st.win_rate(scores)
    lc = st.length_controlled_win_rate(scores, len_model, len_base)
    assert lc["lc_win_rate"] > raw + 0.15 and lc["length_coef"] < 0


def test_length_controlled_rate_matches_raw_when_length_does_not_matter():
    len_model, len_base, _ = length_data(seed=2)
    rng = np.random.default_rng(3)
    scores = st.scores_of(rng.choice(["win", "tie", "loss"], size=len(len_base), p=[0.55, 0.2, 0.25]))
    lc = st.length_controlled_win_rate(scores, len_model, len_base)
    assert lc["lc_win_rate"] == pytest.approx(st.win_rate(scores), abs=0.04)
    equal = st.length_controlled_win_rate(scores, len_base, len_base)  # no length difference at all
    assert equal["lc_win_rate"] == pytest.approx(st.win_rate(scores), abs=1e-4)
    assert st.length_controlled_win_rate([], [], [])["lc_win_rate"] is None


@pytest.mark.parametrize(
    "text, flagged",
    [
        ("Paris is the capital of France. It lies on the Seine.", set()),
        ("Great question! Paris is the capital of France and it lies on the Seine.", {"sycophantic"}),
        (
            "It depends on many things. It's important to note that there are many perspectives here, truly.",
            {"evasive"},
        ),
        ("Boil the water. Boil the water. Boil the water. Add the pasta now.", {"repetitive"}),
        ("ok", {"degenerate"}),
        ("the the the the the the the the the the the the", {"degenerate"}),
        (" ".join(f"word{i}" for i in range(450)), {"verbose"}),
        ("One single sentence with enough words.", set()),  # the seed's split(".") called this repetitive
    ],
)
def test_seed_pathology_checks(text, flagged):
    flags = st.pathology_flags(text)
    assert {name for name, hit in flags.items() if hit} == flagged


def test_pathology_counts_per_model():
    counts = st.pathology_counts(
        ["Great question! Here is a long and useful answer for you.", "ok", "fine answer here ok"]
    )
    assert counts == {"verbose": 0, "sycophantic": 1, "evasive": 0, "repetitive": 0, "degenerate": 2}


def test_perplexity_of_a_tiny_model(tiny_model_dir):
    from alignstudio.core.models import load_causal_lm, load_tokenizer

    model, tokenizer = load_causal_lm(tiny_model_dir), load_tokenizer(tiny_model_dir)
    text = "The honeybee lives in colonies that can hold tens of thousands of workers. " * 20
    n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    ppl, counted = text_perplexity(model, tokenizer, text, max_length=64, stride=32)
    assert counted == n_tokens - 1 and math.isfinite(ppl) and ppl > 1
    # a random model is near-uniform over its vocabulary
    assert ppl < 5 * len(tokenizer)
    whole, _ = text_perplexity(model, tokenizer, text, max_length=512, stride=512)
    assert whole == pytest.approx(ppl, rel=0.2)  # the window size barely matters to a context-blind model
