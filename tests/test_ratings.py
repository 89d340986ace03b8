"""Raw Bradley-Terry ratings on constructed vote sets (the style-controlled ones: test_arena_style.py)."""

import random

from alignstudio.services.arena.ratings import rate


def bradley_terry(battles, bootstrap: int = 500, seed: int = 0):
    """The leaderboard's raw columns for (model_a, model_b, score) battles."""
    return rate(battles, rounds=bootstrap, seed=seed).table


def _votes(n: int, p_strong: float, seed: int = 0) -> list[tuple[str, str, float]]:
    rng = random.Random(seed)
    battles = []
    for i in range(n):
        score = 1.0 if rng.random() < p_strong else 0.0
        battles.append(("aligned", "sft", score) if i % 2 else ("sft", "aligned", 1.0 - score))
        battles.append(("sft", "base-tiny", 1.0 if rng.random() < 0.7 else 0.0))
    return battles


def test_clearly_stronger_model_ranks_first():
    board = bradley_terry(_votes(200, 0.8), bootstrap=100)
    assert list(board["model"]) == ["aligned", "sft", "base-tiny"]
    top = board.iloc[0]
    assert top["ci_low"] <= top["rating"] <= top["ci_high"]
    assert top["votes"] == 200 and top["wins"] + top["losses"] + top["ties"] == 200


def test_intervals_narrow_with_more_votes():
    few = bradley_terry(_votes(30, 0.75), seed=1).set_index("model")
    many = bradley_terry(_votes(600, 0.75), seed=1).set_index("model")
    width = lambda board: board.loc["aligned", "ci_high"] - board.loc["aligned", "ci_low"]  # noqa: E731
    assert width(many) < width(few) / 2


def test_ties_count_half_and_even_records_rate_equal():
    board = bradley_terry([("x", "y", 0.5)] * 10 + [("x", "y", 1.0), ("x", "y", 0.0)], bootstrap=20)
    board = board.set_index("model")
    assert abs(board.loc["x", "rating"] - board.loc["y", "rating"]) < 1.0
    assert board.loc["x", "ties"] == 10


def test_unbeaten_model_stays_finite():
    board = bradley_terry([("champ", "rookie", 1.0)] * 20, bootstrap=20)
    assert board["rating"].notna().all() and board.iloc[0]["model"] == "champ"
    assert bradley_terry([]).empty
