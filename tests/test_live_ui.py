"""Live mode in the app (issue 37): the container's `live` door, a campaign's live session feeding the Label tab
(pairs from the newest version, labels to the session), the chip, the Train tab's curve and the Arena's "live"
model, on the tiny model with a real trainer process."""

from __future__ import annotations

import json
import time

import pytest

from alignstudio.core import access
from alignstudio.core.errors import UserError
from alignstudio.services.arena import ArenaSettings, new_battle
from alignstudio.services.live import AGAINST_BASE, POLICY
from alignstudio.services.live.campaigns import session_of
from alignstudio.services.live.service import LiveService
from alignstudio.services.sampling.prefetch import FeedConfig
from alignstudio.ui import label, live_chip, train_live

PROMPT_SET = "default"
# the Label tab's sampling controls' values: prompt set, model A, model B, temperatures, top_p, tokens, seed, systems
SAMPLING = (PROMPT_SET, None, "(same as A)", 0.9, 0.9, 0.95, 8, "", "", "")


def test_the_container_has_one_live_door(services):
    assert isinstance(services.live, LiveService)
    assert services.live.store is services.store and services.live.generators is services.generators
    assert services.live.feeds is services.feeds and services.live.root == services.workspace.root / "live"
    assert services.arena.live is services.live  # the Arena resolves "live" through it
    assert services.live.offered() == []  # no live version yet: the model lists have no "live"
    with pytest.raises(UserError, match='model "live": no live session'):
        services.live.resolve_model("live")
    assert services.live.resolve_model("smollm2") == "smollm2"


def test_annotators_may_not_start_or_stop_live_mode(services, tiny_model_dir):
    access.configure(role_of=lambda name: access.ANNOTATOR)
    try:
        with access.acting_as(access.Caller("ann", access.ANNOTATOR)):
            with pytest.raises(UserError, match="for admins"):
                services.live.start_campaign(PROMPT_SET, str(tiny_model_dir), pairs=POLICY, every=2)
            with pytest.raises(UserError, match="for admins"):
                services.live.stop_campaign(PROMPT_SET)
    finally:
        access.reset()
    assert not services.live.names()


def test_bad_live_settings_name_the_field(services, tiny_model_dir):
    with pytest.raises(UserError, match="Burst every"):
        services.live.start_campaign(PROMPT_SET, str(tiny_model_dir), pairs=POLICY, every="many")
    with pytest.raises(UserError, match="Live mode: every"):
        services.live.start_campaign(PROMPT_SET, str(tiny_model_dir), pairs=POLICY, every=0)
    with pytest.raises(UserError, match="Prompt set"):
        services.live.start_campaign("", str(tiny_model_dir), pairs=POLICY, every=2)
    assert not services.live.names()


def _wait(predicate, timeout: float = 120.0):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_live_campaign_feeds_the_label_tab_learns_its_labels_and_is_the_arenas_live(services, tiny_model_dir):
    live, model = services.live, str(tiny_model_dir)
    config = (PROMPT_SET, model, *SAMPLING[2:])
    plain = label.feed_config("pair", *config)
    assert live_chip.live_config(services, *config) == plain  # not live: the models chosen
    assert live_chip.chip(services, PROMPT_SET) == live_chip.OFF

    name = live_chip.start(services, PROMPT_SET, model, AGAINST_BASE, 2)[0].split("**")[1]
    assert live.campaign_session(PROMPT_SET) == name
    with pytest.raises(UserError, match="live already"):
        live.start_campaign(PROMPT_SET, model, pairs=POLICY, every=2)
    live.wait(name, timeout=300)

    # the Label tab's pairs: answer A from the newest version (v0), answer B from the base (the setting)
    feed = live_chip.live_config(services, *config)
    assert feed == FeedConfig(PROMPT_SET, f"live-{name}-v0", model, plain.settings)
    state, *_ = label.next_pair(services, dict(label.EMPTY), "alice", label.FRESH, *config)
    shown = state["shown"]
    pair = services.store.pair(shown["pair_id"])
    base = services.registry.resolve(model).name
    assert (pair.model_a, pair.model_b) == (f"live-{name}-v0", base) and session_of(pair.model_a) == (name, 0)

    # a decisive label goes to the session once (a second click on the same showing stores nothing new)
    said = label.acknowledge(services, "left", state, "alice", "", label.FRESH, *config)
    assert "live label 1" in said
    again = label.acknowledge(services, "left", state, "alice", "", label.FRESH, *config)
    assert "Already stored" in again
    [row] = [json.loads(line) for line in (live.root / name / "labels.jsonl").read_text().splitlines()]
    winner = pair.text_a if shown["shown_left"] == "A" else pair.text_b
    assert row["chosen"][0]["content"] == winner and row["pair_id"] == pair.id and row["annotator"] == "alice"
    tie = services.store.add_preference(pair.id, "tie", annotator="bob", shown_left="A")
    assert live.learn_label(tie) is None  # not decisive: nothing for the policy
    assert live.status(name).labels == 1

    chip = live_chip.chip(services, PROMPT_SET)
    assert chip.startswith("**Live v0**") and "(1 given)" in chip and "no burst yet" in chip

    # the Arena's "live": the newest version, resolved when the conversation starts and recorded with the vote
    assert live.offered() == ["live"] and live.resolve_model("live") == f"live-{name}-v0"
    battle = new_battle("live", model, anonymous=False)
    for _ in services.arena.turn(battle, "Hi there", ArenaSettings(max_new_tokens=4)):
        pass
    assert battle.model_left == f"live-{name}-v0"

    # stopped: the tab samples from the models chosen again, and labels of the session's pairs stay out of it
    live_chip.stop(services, PROMPT_SET)
    assert live.campaign_session(PROMPT_SET) is None
    assert live_chip.live_config(services, *config) == plain
    assert live.learn_label(services.store.add_preference(pair.id, "A", annotator="bob", shown_left="A")) is None
    assert "stopped" in live_chip.chip(services, PROMPT_SET)


@pytest.mark.slow
def test_a_new_version_replaces_the_feed_once_its_first_pair_is_ready(services, tiny_model_dir):
    """The older version's ready pairs are handed out until the new version's feed has one; then the new one."""
    from test_live import FRACTION, messages, prompts_by_side

    from alignstudio.services.live.service import LiveLabel
    from alignstudio.training.live.folder import LiveSettings

    live, model = services.live, str(tiny_model_dir)
    settings = LiveSettings(  # the drift budget off: this test is about the feed, not the burst's verdict
        model=model, every=8, steps=3, learning_rate=2e-3, heldout_fraction=FRACTION, drift_budget=0.0
    )
    live.start("s", settings)
    live._write_campaigns({PROMPT_SET: "s"})
    live.wait("s", timeout=300)
    config = (PROMPT_SET, model, *SAMPLING[2:])
    v0 = live_chip.live_config(services, *config)
    assert v0.model_a == "live-s-v0" and v0.model_b is None  # both answers from the policy
    _wait(lambda: services.feeds.feed(v0).ready() > 0)

    train, held = prompts_by_side(6, 2)
    live.add_labels("s", [LiveLabel(messages(t), "Yes, gladly.", "No. Never, go away.") for t in train + held])
    status = live.wait("s", timeout=300)
    assert status.current == 1, live.bursts("s")
    first = live_chip.live_config(services, *config)
    if first.model_a == "live-s-v0":  # v1's feed is warming up: v0's ready pairs are still labelable
        assert services.feeds.feed(v0).ready() > 0
    _wait(lambda: live_chip.live_config(services, *config).model_a == "live-s-v1")
    assert services.labeling.next_pair(live_chip.live_config(services, *config), timeout=60).pair_id
    assert "live-s-v0" not in services.generators.loaded()  # the older version left the pool
    hotter = (PROMPT_SET, model, SAMPLING[2], 1.2, *SAMPLING[4:])  # new settings, the same version: it stays
    assert live_chip.live_config(services, *hotter).model_a == "live-s-v1"
    assert "live-s-v1" in services.generators.loaded()

    frames = train_live.curve_frames(services, "s")
    drawn = frames[0].dropna()
    assert set(drawn["series"]) == {train_live.POLICY, train_live.TRIED} and list(drawn["burst"]) == [1, 1]
    assert frames[2][0][:3] == [1, "kept", "v1"]
    live.stop("s")
