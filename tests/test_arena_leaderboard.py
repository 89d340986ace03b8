"""The Arena tab's leaderboard handler over real services: arena votes from the store, raw and style-controlled
ratings side by side, the anchor, the style coefficients, the refusal of too few bootstrap rounds."""

import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.workspace import Workspace
from alignstudio.services.arena.ratings import RatingSettings
from alignstudio.services.container import Services
from alignstudio.ui import arena


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir):
    built = Services.build(
        Workspace.open(tmp_path_factory.mktemp("ws")),
        default_model=str(tiny_model_dir),
        prefetch_depth=1,
        autostart=False,
    )
    yield built
    built.close()


def _vote(services, long_left: bool, verdict: str, i: int) -> None:
    long_answer = f"Answer {i}: " + " ".join(["detail"] * (40 + i)) + "\n\n- one\n- two"
    short_answer = f"Answer {i}: short."
    left, right = (long_answer, short_answer) if long_left else (short_answer, long_answer)
    models = ("m-long", "m-short") if long_left else ("m-short", "m-long")
    pair = services.store.add_pair(
        [{"role": "user", "content": f"question {i}"}],
        left,
        right,
        model_a=models[0],
        model_b=models[1],
        prompt_set="arena",
        origin="arena",
    )
    services.store.add_preference(pair, verdict, annotator="carol", source="arena", shown_left="A")


def test_leaderboard_shows_raw_and_style_controlled_ratings_with_the_anchor(services):
    empty_table, note = arena.leaderboard(services, "", 500)
    assert empty_table.empty and "No arena votes yet" in note
    for i in range(14):  # the longer answer wins 10 of 14 votes, 4 are ties
        _vote(services, long_left=i % 2 == 0, verdict=("A" if i % 2 == 0 else "B") if i < 10 else "tie", i=i)
    table, summary = arena.leaderboard(services, "m-short", 500)
    shown = table.set_index("model")
    assert list(table.columns) == [
        "model",
        "rating",
        "95% CI",
        "style-controlled",
        "95% CI (style)",
        "votes",
        "wins / ties / losses",
    ]
    assert shown.loc["m-short", "rating"] == 1000 and shown.loc["m-short", "95% CI"] == "anchor"
    assert shown.loc["m-long", "rating"] > 1000 and shown.loc["m-long", "95% CI"].startswith("[")
    assert shown.loc["m-long", "votes"] == 14 and shown.loc["m-long", "wins / ties / losses"] == "10 / 4 / 0"
    assert "Style coefficients" in summary and "length (words)" in summary and "500 bootstrap rounds" in summary
    # the same votes and settings: the kept board, not a refit
    settings = RatingSettings(anchor="m-short")
    assert services.arena.leaderboard(settings) is services.arena.leaderboard(settings)


def test_fewer_than_500_bootstrap_rounds_are_refused(services):
    with pytest.raises(UserError, match="bootstrap_rounds"):
        arena.leaderboard(services, "", 100)
