import pytest

from alignstudio.core.errors import UserError
from alignstudio.services.data.browser import label_records, label_table, relabel

MSG = [{"role": "user", "content": "Best way to learn Python?"}]


@pytest.fixture
def filled(store):
    p1 = store.add_pair(
        MSG, "Build small projects.", "Read the manual cover to cover.", model_a="m", model_b="m", prompt_set="default"
    )
    p2 = store.add_pair(
        [{"role": "user", "content": "Boil an egg?"}],
        "10 minutes.",
        "Microwave it.",
        model_a="m",
        model_b="m",
        prompt_set="kitchen",
    )
    e1 = store.add_preference(p1, "A", annotator="ann", shown_left="A")
    e2 = store.add_preference(p2, "B", annotator="bob", shown_left="A", source="judge:rules")
    gen = store.add_generation(MSG, "Practice daily.", model="m")
    store.add_feedback(gen, "up", annotator="ann")
    return store, e1, e2


def test_filters_and_search(filled):
    store, e1, e2 = filled
    assert len(label_table(store)) == 3
    assert list(label_table(store, kind="feedback")["verdict"]) == ["up"]
    assert list(label_table(store, source="judge:rules")["event_id"]) == [e2]
    assert list(label_table(store, annotator="ann", kind="preference")["event_id"]) == [e1]
    assert list(label_table(store, prompt_set="kitchen")["event_id"]) == [e2]
    assert list(label_table(store, search="MICROWAVE")["event_id"]) == [e2]
    assert label_table(store, verdict="tie").empty


def test_relabel_is_retract_plus_new_event(filled):
    store, e1, _ = filled
    new = relabel(store, e1, "B", annotator="ann")
    labels = {label.id: label for label in store.labels()}
    assert e1 not in labels and labels[new].verdict == "B" and labels[new].shown_left == "A"
    with pytest.raises(UserError, match="already retracted"):
        relabel(store, e1, "A", annotator="ann")
    with pytest.raises(UserError, match="verdict"):
        relabel(store, new, "maybe", annotator="ann")


def test_label_records_for_the_validator(filled):
    store, e1, e2 = filled
    records = label_records(store)
    assert {r["verdict"] for r in records} == {"A", "B"} and all(r["left"] == "A" for r in records)


def test_table_shows_what_the_annotator_saw_with_the_stored_form_one_toggle_away(store):
    from alignstudio.services.data.browser import SEEN_COLUMNS, STORED_COLUMNS, browse_table

    pair = store.add_pair(MSG, "Build small projects.", "Read the manual cover to cover.", model_a="m", model_b="m")
    # the annotator saw B on the left and clicked "right is better": stored as verdict A, shown_left B
    event = store.add_preference(pair, "A", annotator="ann", shown_left="B")
    seen = browse_table(store)
    assert list(seen.columns) == SEEN_COLUMNS and seen.columns[-1] == "event_id"
    row = seen.iloc[0]
    assert row["verdict"] == "right is better"
    assert row["left"] == "Read the manual cover to cover." and row["right"] == "Build small projects."
    assert row["event_id"] == event
    stored = browse_table(store, stored=True)
    assert list(stored.columns) == STORED_COLUMNS and stored.columns[-1] == "event_id"
    assert (stored.iloc[0]["verdict"], stored.iloc[0]["shown_left"]) == ("A", "B")
    assert stored.iloc[0]["response_a"] == "Build small projects."


def test_as_seen_words_for_every_verdict():
    from alignstudio.services.data.browser import as_seen

    assert as_seen("A", "A") == ("left is better", "A")
    assert as_seen("B", "A") == ("right is better", "A")
    assert as_seen("B", "B") == ("left is better", "B")
    assert as_seen("A", None) == ("A is better", "A")  # imports and judges record no sides
    assert as_seen("both_bad", "B") == ("both bad", "B") and as_seen("tie", "")[0] == "tie"
    assert as_seen("up", None)[0] == "thumbs up" and as_seen("down", None)[0] == "thumbs down"  # words, no emoji


def test_relabel_as_seen_maps_left_and_right_through_the_side_shown(store):
    pair = store.add_pair(MSG, "Build small projects.", "Read the manual cover to cover.", model_a="m", model_b="m")
    event = store.add_preference(pair, "A", annotator="ann", shown_left="B")  # "right is better" on screen
    new = relabel(store, event, "left", annotator="ann")  # the left one was B
    assert {x.id: x.verdict for x in store.labels()}[new] == "B"
    assert relabel(store, new, "right", annotator="ann") and [x.verdict for x in store.labels()] == ["A"]
    imported = store.add_preference(pair, "A", annotator="imp", shown_left=None, source="judge:rules")
    with pytest.raises(UserError, match="records no left and right"):
        relabel(store, imported, "left", annotator="ann")


def test_verdict_filter_speaks_the_words_of_the_table_shown(store):
    from alignstudio.services.data.browser import SEEN_VERDICTS, STORED_VERDICTS, browse_table

    pair = store.add_pair(MSG, "Build small projects.", "Read the manual cover to cover.", model_a="m", model_b="m")
    right = store.add_preference(pair, "A", annotator="ann", shown_left="B")  # seen: "right is better"
    left = store.add_preference(pair, "A", annotator="bob", shown_left="A")  # seen: "left is better"
    gen = store.add_generation(MSG, "Practice daily.", model="m")
    store.add_feedback(gen, "up", annotator="ann")
    assert "A" not in SEEN_VERDICTS and "left is better" in SEEN_VERDICTS and "A" in STORED_VERDICTS
    # every verdict word the table shows is one the filter offers, and filtering by it finds that row
    seen = browse_table(store)
    assert set(seen["verdict"]) <= set(SEEN_VERDICTS)
    for word in seen["verdict"]:
        assert word in list(browse_table(store, verdict=word)["verdict"])
    assert list(browse_table(store, verdict="right is better")["event_id"]) == [right]
    assert list(browse_table(store, verdict="left is better")["event_id"]) == [left]
    assert list(browse_table(store, verdict="thumbs up")["kind"]) == ["feedback"]
    # the stored form filters with the stored names
    assert set(browse_table(store, stored=True, verdict="A")["event_id"]) == {left, right}
    with pytest.raises(UserError, match="Verdict must be one of"):
        browse_table(store, verdict="A")  # a stored name while the table shows what was seen
