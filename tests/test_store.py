import sqlite3
import threading

import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.store import Store

MSG = [{"role": "user", "content": "Name a prime number."}]


def _pair(store, a="Two.", b="Nine is prime.", **kw):
    return store.add_pair(
        MSG,
        a,
        b,
        model_a="m",
        model_b="m",
        params_a={"temperature": 0.7},
        params_b={"temperature": 1.0},
        prompt_set="default",
        **kw,
    )


def test_pair_and_label_keep_provenance(store):
    pair_id = _pair(store)
    event = store.add_preference(pair_id, "A", annotator="ann", shown_left="B", rationale="correct")
    [row] = store.preference_rows()
    assert row["event_id"] == event and row["verdict"] == "A" and row["shown_left"] == "B"
    assert row["annotator"] == "ann" and row["source"] == "human" and row["rationale"] == "correct"
    assert row["text_a"] == "Two." and row["messages"] == MSG and row["prompt_set"] == "default"


def test_undo_is_an_event_not_a_delete(store):
    pair_id = _pair(store)
    first = store.add_preference(pair_id, "A", annotator="ann")
    store.retract(first, annotator="ann")
    second = store.add_preference(pair_id, "B", annotator="ann")
    assert [label.id for label in store.labels()] == [second]
    assert store.event_count() == 3  # label, retract, relabel: history kept
    with pytest.raises(UserError, match="already retracted"):
        store.retract(first)


def test_bad_input_changes_nothing(store):
    pair_id = _pair(store)
    before = store.event_count()
    with pytest.raises(UserError, match="verdict"):
        store.add_preference(pair_id, "C")
    with pytest.raises(UserError, match="no pair"):
        store.add_preference("missing", "A")
    with pytest.raises(UserError, match="shown_left"):
        store.add_preference(pair_id, "A", shown_left="left")
    with pytest.raises(UserError, match="edited"):
        store.add_preference(pair_id, "tie", edited_text="better")
    with pytest.raises(UserError, match="up"):
        store.add_feedback("missing", "sideways")
    assert store.event_count() == before


def test_retried_write_is_stored_once(store):
    pair_id = _pair(store)
    store.add_preference(pair_id, "A", event_id="fixed-id")
    store.add_preference(pair_id, "A", event_id="fixed-id")
    assert len(store.labels()) == 1


def test_edited_answer_is_a_new_generation(store):
    pair_id = _pair(store)
    store.add_preference(pair_id, "B", edited_text="Two is the only even prime.")
    [row] = store.preference_rows()
    assert row["edited_text"] == "Two is the only even prime." and row["text_b"] == "Nine is prime."


def test_wal_mode_and_integrity(store):
    _pair(store)
    raw = sqlite3.connect(store.path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.integrity_ok()


def test_concurrent_writers_lose_nothing(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    pair_id = _pair(store)
    errors = []

    def write(who):
        try:
            for _ in range(50):
                store.add_preference(pair_id, "A", annotator=who)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"a{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.labels()) == 400
    assert all(store.label_count(f"a{i}") == 50 for i in range(8))


def test_unreadable_store_is_a_clear_error(tmp_path):
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="cannot open the store"):
        Store(path)
