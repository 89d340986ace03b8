"""Graded verdicts: "much" or "slightly" better, stored with the label (once), kept by an old store file that
gains the column on open, and exported as the DPO rows' `strength` column (KTO rows stay ungraded)."""

import json
import sqlite3

import datasets
import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.store import Store
from alignstudio.services.data.snapshots import dpo_rows, export_snapshot, kto_rows
from alignstudio.services.labeling import LabelingService, seen_as
from alignstudio.ui import label as label_ui

MSG = [{"role": "user", "content": "Capital of France?"}]

# The store's tables as they were before graded verdicts (the events table had no `strength` column).
OLD_SCHEMA = """
CREATE TABLE prompts (id TEXT PRIMARY KEY, messages TEXT NOT NULL, prompt_set TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL);
CREATE TABLE generations (id TEXT PRIMARY KEY, prompt_id TEXT NOT NULL REFERENCES prompts(id),
    model TEXT NOT NULL, params TEXT NOT NULL, text TEXT NOT NULL, edited_from TEXT, created REAL NOT NULL);
CREATE TABLE pairs (id TEXT PRIMARY KEY, prompt_id TEXT NOT NULL REFERENCES prompts(id),
    gen_a TEXT NOT NULL REFERENCES generations(id), gen_b TEXT NOT NULL REFERENCES generations(id),
    origin TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('preference', 'feedback', 'retract')),
    pair_id TEXT REFERENCES pairs(id),
    gen_id TEXT REFERENCES generations(id),
    verdict TEXT,
    shown_left TEXT,
    annotator TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    rationale TEXT NOT NULL DEFAULT '',
    target TEXT,
    created REAL NOT NULL
);
INSERT INTO prompts VALUES ('p1', '[{"role": "user", "content": "Capital of France?"}]', 'default', 1.0);
INSERT INTO generations VALUES ('ga', 'p1', 'm', '{}', 'Paris.', NULL, 1.0);
INSERT INTO generations VALUES ('gb', 'p1', 'm', '{}', 'Lyon.', NULL, 1.0);
INSERT INTO pairs VALUES ('pair1', 'p1', 'ga', 'gb', 'sampler', 1.0);
INSERT INTO pairs VALUES ('pair2', 'p1', 'ga', 'gb', 'sampler', 1.0);
INSERT INTO events(id, kind, pair_id, verdict, shown_left, annotator, source, rationale, created)
    VALUES ('old-label', 'preference', 'pair1', 'A', 'B', 'ann', 'human', 'correct', 2.0);
INSERT INTO events(id, kind, pair_id, verdict, annotator, source, created)
    VALUES ('old-tie', 'preference', 'pair2', 'tie', 'ann', 'human', 3.0);
"""


def _pair(store, a="Paris.", b="Lyon."):
    return store.add_pair(MSG, a, b, model_a="m", model_b="m")


def test_strength_round_trips_through_the_store(store):
    much = store.add_preference(_pair(store), "A", annotator="ann", strength="much")
    slight = store.add_preference(_pair(store), "B", annotator="ann", strength="slight")
    plain = store.add_preference(_pair(store), "A", annotator="ann")
    assert {label.id: label.strength for label in store.labels()} == {much: "much", slight: "slight", plain: None}
    assert store.label(much).strength == "much" and store.last_label("ann").strength is None
    assert [row["strength"] for row in store.preference_rows()] == ["much", "slight", None]


def test_a_bad_strength_names_the_field_and_stores_nothing(store):
    pair = _pair(store)
    with pytest.raises(UserError, match="strength must be one of much, slight"):
        store.add_preference(pair, "A", strength="huge")
    with pytest.raises(UserError, match="only an A or B verdict has a strength"):
        store.add_preference(pair, "tie", strength="much")
    assert store.event_count() == 0


def test_a_store_file_made_before_graded_verdicts_opens_with_every_label(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    conn.close()
    store = Store(path)
    try:
        labels = store.labels()
        assert [(label.id, label.verdict, label.shown_left, label.rationale) for label in labels] == [
            ("old-label", "A", "B", "correct"),
            ("old-tie", "tie", None, ""),
        ]
        assert [label.strength for label in labels] == [None, None]  # the old labels are plain verdicts
        new = store.add_preference("pair2", "B", annotator="ann", strength="much")  # the new column takes writes
        assert store.label(new).strength == "much" and store.event_count() == 3
    finally:
        store.close()
    reopened = Store(path)  # the column is added once: opening again changes nothing
    try:
        assert [label.strength for label in reopened.labels()] == [None, None, "much"]
        assert reopened.integrity_ok()
    finally:
        reopened.close()


def test_a_graded_verdict_is_stored_once_under_its_showing(store):
    labeling = LabelingService(store, feeds=None)
    pair_id = _pair(store)
    shown = labeling._show(pair_id, MSG[-1]["content"], "Paris.", "Lyon.", "default")
    first = labeling.label(shown, "left", annotator="ann", strength="much")
    second = labeling.label(shown, "right", annotator="ann")  # Shift+1 then 2: the first is kept
    assert not first.duplicate and second.duplicate and second.event_id == first.event_id == shown.key
    assert second.strength == "much" and second.verdict == shown.shown_left
    [stored] = store.labels()
    assert stored.id == shown.key and stored.strength == "much"
    assert seen_as(shown.shown_left, stored.verdict, stored.strength) == "A is much better"


def test_the_label_tab_says_the_grade_it_stored(services):
    pair_id = _pair(services.store)
    shown = services.labeling._show(pair_id, MSG[-1]["content"], "Paris.", "Lyon.", "default")
    state = {"shown": shown.__dict__}
    said = label_ui.acknowledge(services, "right", state, "ann", "", label_ui.QUEUE, strength="slight")
    assert "Stored: **B is slightly better**" in said
    [stored] = services.store.labels()
    assert stored.strength == "slight" and stored.verdict == shown.side("right")


def test_dpo_export_carries_the_strength_column_and_kto_does_not(store, workspace, tmp_path):
    store.add_preference(_pair(store), "A", strength="much")
    store.add_preference(_pair(store, "Rome.", "Milan."), "B", strength="slight")
    store.add_preference(_pair(store, "Bern.", "Zurich."), "A")
    assert [row["strength"] for row in dpo_rows(store)] == ["much", "slight", None]
    snapshot = export_snapshot(store, workspace, "dpo", out=[str(tmp_path / "d.jsonl"), str(tmp_path / "d.csv")])
    data = datasets.load_from_disk(str(snapshot.path))
    assert data["strength"] == ["much", "slight", None]
    exported = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [row["strength"] for row in exported] == ["much", "slight", None]
    assert (tmp_path / "d.csv").read_text().splitlines()[0].split(",")[-1] == "strength"
    assert all("strength" not in row for row in kto_rows(store, include_pairs=True))
