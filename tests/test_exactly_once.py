"""A label is stored exactly once per item on screen: double clicks, repeated keys, API retries and a failed
next-item fetch store nothing new; undo brings the item back to be labeled again."""

import threading

import pytest

from alignstudio.core.errors import UserError
from alignstudio.services.arena import ArenaState, record_vote
from alignstudio.services.labeling import LabelingService, ShownPair, seen_as
from alignstudio.services.labeling.exactly_once import MoveOn
from alignstudio.services.labeling.feedback import FeedbackService, ShownResponse

MSG = [{"role": "user", "content": "Name a prime number."}]


def _shown_pair(store, labeling) -> ShownPair:
    pair_id = store.add_pair(MSG, "Seven.", "Nine.", model_a="m", model_b="m")
    return labeling._show(pair_id, MSG[-1]["content"], "Seven.", "Nine.", "default")


def test_a_second_verdict_on_the_same_showing_stores_nothing(store):
    labeling = LabelingService(store, feeds=None)
    shown = _shown_pair(store, labeling)
    first = labeling.label(shown, "left", annotator="ann")
    second = labeling.label(shown, "right", annotator="ann")  # "1" then "2" 50 ms apart
    assert not first.duplicate and second.duplicate and second.verdict == first.verdict == shown.shown_left
    assert [label.verdict for label in store.labels()] == [shown.shown_left]
    assert labeling.label_edited(shown, "right", "Eleven.", annotator="ann").duplicate
    assert store.label_count("ann") == 1


def test_concurrent_clicks_on_one_showing_store_one_label(store):
    labeling = LabelingService(store, feeds=None)
    shown = _shown_pair(store, labeling)
    acks = []
    threads = [
        threading.Thread(target=lambda c=c: acks.append(labeling.label(shown, c, annotator="ann")))
        for c in ("left", "right", "tie", "both_bad") * 4
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.labels()) == 1 and len(acks) == 16
    assert {ack.event_id for ack in acks} == {shown.key}
    # every answer tells what is stored: one "Stored", fifteen "already stored", all with the stored verdict
    # (a check-then-write race once answered "Stored: A" to one click and "Stored: B" to another)
    stored = store.labels()[0].verdict
    assert [ack.verdict for ack in acks] == [stored] * 16
    assert sum(not ack.duplicate for ack in acks) == 1


def test_concurrent_opposite_verdicts_each_acknowledge_what_is_stored(store):
    """Two left and two right clicks on one showing, released together, round after round."""
    labeling = LabelingService(store, feeds=None)
    for _ in range(10):
        shown = _shown_pair(store, labeling)
        start, acks = threading.Barrier(4), []

        def click(choice, start=start, acks=acks, shown=shown):
            start.wait()
            acks.append(labeling.label(shown, choice, annotator="ann"))

        threads = [threading.Thread(target=click, args=(c,)) for c in ("left", "left", "right", "right")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stored = store.label(shown.key).verdict
        assert [ack.verdict for ack in acks] == [stored] * 4
        assert [ack.duplicate for ack in acks].count(False) == 1


def test_a_label_over_the_text_limits_is_refused_and_stores_nothing(store):
    labeling = LabelingService(store, feeds=None)
    shown = _shown_pair(store, labeling)
    with pytest.raises(UserError, match="the reason is 5,000 characters; the limit is 2,000"):
        labeling.label(shown, "left", annotator="ann", rationale="x" * 5000)
    with pytest.raises(UserError, match="the limit is 100"):
        labeling.label(shown, "left", annotator="a" * 101)
    with pytest.raises(UserError, match="the better answer is 20,001 characters"):
        labeling.label_edited(shown, "left", "y" * 20_001, annotator="ann")
    with pytest.raises(UserError, match="the prompt is 4,001 characters; the limit is 4,000"):
        labeling.pair_for_prompt("z" * 4001, None, None)
    assert store.labels() == [] and not labeling.is_labeled(shown)
    assert not labeling.label(shown, "left", annotator="ann", rationale="x" * 2000).duplicate


def test_moving_on_happens_once_per_key():
    moved = MoveOn(remember=2)
    assert moved.first("a") and not moved.first("a") and moved.first("b") and moved.first("c")
    assert moved.first("a")  # forgotten after `remember` newer keys: memory stays bounded
    with pytest.raises(UserError):
        moved.once("d", lambda: (_ for _ in ()).throw(UserError("sampling failed")))
    assert moved.once("d", lambda: "next") == "next"  # a failed fetch is retried, once
    assert moved.once("d", lambda: "again") is None


def test_undo_brings_the_pair_back_as_it_was_shown_and_it_can_be_labeled_again(store):
    labeling = LabelingService(store, feeds=None)
    shown = _shown_pair(store, labeling)
    labeling.label(shown, "left", annotator="ann")
    with pytest.raises(UserError, match="nothing to undo"):
        labeling.undo_last("someone-else")  # only your own labels
    again = labeling.undo_last("ann")
    assert (again.pair_id, again.left, again.right, again.shown_left) == (
        shown.pair_id,
        shown.left,
        shown.right,
        shown.shown_left,
    )
    assert again.key != shown.key and store.labels() == []
    assert not labeling.label(again, "right", annotator="ann").duplicate
    [label] = store.labels()
    assert seen_as(label.shown_left, label.verdict) == "B is better"
    labeling.undo_last("ann")
    with pytest.raises(UserError, match="nothing to undo"):
        labeling.undo_last("ann")


def test_feedback_once_per_showing_and_undo_shows_the_response_again(store):
    feedback = FeedbackService(store, feeds=None)
    gen_id = store.add_generation(MSG, "Seven.", model="m", prompt_set="default")
    shown = ShownResponse(gen_id, MSG[-1]["content"], "Seven.", "default", key="k1")
    assert not feedback.rate(shown, "up", annotator="bob").duplicate
    assert feedback.rate(shown, "down", annotator="bob").duplicate
    assert [row["verdict"] for row in store.feedback_rows()] == ["up"]
    again = feedback.undo_last("bob")
    assert (again.gen_id, again.text, again.prompt) == (gen_id, "Seven.", MSG[-1]["content"]) and again.key != "k1"
    assert store.feedback_rows() == []


def test_an_arena_vote_is_stored_once_and_only_on_complete_answers(store):
    state = ArenaState(
        "m1",
        "m2",
        anonymous=False,
        user_turn="Hi",
        reply_left="Hello",
        reply_right="Hey",
        voted=False,
        complete=False,
        turn_key="t1",
    )
    with pytest.raises(UserError, match="wait until both answers are complete"):
        record_vote(store, state, "left", annotator="carol")
    state.complete = True
    copy = ArenaState.from_dict(state.to_dict())  # a second click, sent before the first one's answer arrived
    assert not record_vote(store, state, "left", annotator="carol").duplicate
    assert record_vote(store, copy, "right", annotator="carol").duplicate
    assert [(r["verdict"], r["source"]) for r in store.preference_rows()] == [("A", "arena")]
    assert len(store.pairs()) == 1


def test_over_http_repeated_labels_and_a_failed_next_fetch_store_each_label_once(tmp_path, tiny_model_dir):
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from servers import running_app

    from alignstudio.core.store import Store

    good = ["fresh samples", "default", str(tiny_model_dir), "(same as A)", 0.7, 1.0, 0.95, 6, None]
    broken = [*good[:2], "no-such-model", *good[3:]]
    single = ["default", str(tiny_model_dir), 0.7, 0.95, 6, None]  # the Feedback tab's sampling settings
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url):
        client = Client(url, verbose=False)
        client.predict("ann", *good, api_name="/label_first_pair")
        client.predict("ann", "", *good, api_name="/label_left")
        assert "Already stored" in client.predict("ann", "", *good, api_name="/label_right")  # a second key
        with pytest.raises(AppError, match="no-such-model"):
            client.predict("ann", *broken, api_name="/label_next")  # the next pair cannot be fetched
        client.predict("ann", "", *good, api_name="/label_left")  # the user clicks again: nothing new
        client.predict("ann", *good, api_name="/label_next")  # the retry moves on
        client.predict("ann", *good, api_name="/label_next")  # a repeated request does not skip a pair
        client.predict("ann", "", *good, api_name="/label_right")
        client.predict("bob", *single, api_name="/feedback_skip")  # Feedback: the first response
        client.predict("bob", "", *single, api_name="/feedback_up")
        assert "Already stored" in client.predict("bob", "", *single, api_name="/feedback_down")
    store = Store(tmp_path / "ws" / "store.sqlite")
    labels = store.labels()
    assert len(labels) == 2 and len({label.pair_id for label in labels}) == 2
    assert labels[0].verdict == labels[0].shown_left and labels[1].verdict != labels[1].shown_left
    assert [row["verdict"] for row in store.feedback_rows()] == ["up"]
