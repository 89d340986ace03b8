"""Labeling guidelines: versions by content hash (an edit is a new one, the old ones kept), each label records the
version its item was shown with (never the one saved after), only admins set them, and the markdown is shown
without any HTML of its own."""

import hashlib
import sqlite3

import pytest

from alignstudio.core import access
from alignstudio.core.errors import UserError
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.services.labeling import LabelingService
from alignstudio.services.labeling.feedback import FeedbackService, ShownResponse
from alignstudio.services.labeling.guidelines import GuidelinesService

MSG = [{"role": "user", "content": "Capital of France?"}]
V1 = "# Be kind\n\nPrefer the **correct** answer."
V2 = "# Be kind\n\nPrefer the correct answer, then the shorter one."


def _h(text: str) -> str:
    return hashlib.sha256((text + "\n").encode()).hexdigest()[:8]


def _show(labeling: LabelingService, store, prompt_set="default", queued=False):
    pair = store.add_pair(MSG, "Paris.", "Lyon.", model_a="m", model_b="m", prompt_set=prompt_set)
    return labeling._show(pair, MSG[-1]["content"], "Paris.", "Lyon.", prompt_set, queued=queued)


def test_an_edit_makes_a_new_version_and_keeps_the_old_one(store):
    guidelines = GuidelinesService(store)
    assert guidelines.current("default") is None
    first = guidelines.set(V1, "default", author="boss")
    assert first.version == _h(V1) and len(first.version) == 8 and first.author == "boss"
    assert guidelines.set(V1 + "\n", "default").version == first.version  # the same text: no new version
    second = guidelines.set(V2, "default")
    assert second.version != first.version and guidelines.current("default").version == second.version
    assert [v.version for v in guidelines.history("default")] == [second.version, first.version]
    assert guidelines.version(first.version).text.strip() == V1  # the old text is kept


def test_a_campaign_without_its_own_uses_the_default_guidelines(store):
    guidelines = GuidelinesService(store)
    everyone = guidelines.set(V1)  # campaign "": every campaign without its own
    queue = guidelines.set(V2, "queue")
    assert guidelines.version_for("default") == everyone.version
    assert guidelines.version_for("default", queued=True) == queue.version
    assert guidelines.version_for("typed") == everyone.version


def test_a_label_records_the_version_shown_not_the_one_saved_after(store):
    labeling = LabelingService(store, feeds=None)
    unguided = _show(labeling, store)  # no guidelines yet: the label records none
    labeling.label(unguided, "left", annotator="ann")
    v1 = labeling.guidelines.set(V1, "default")
    shown = _show(labeling, store)
    assert shown.guidelines == v1.version
    v2 = labeling.guidelines.set(V2, "default")  # an admin saves v2 while the pair is on screen
    labeling.label(shown, "right", annotator="ann")
    after = _show(labeling, store)
    labeling.label(after, "tie", annotator="ann")
    assert [label.guidelines for label in store.labels()] == [None, v1.version, v2.version]
    assert [row["guidelines"] for row in store.preference_rows()] == [None, v1.version, v2.version]
    # a relabel keeps the version the pair was seen with
    store.relabel(shown.key, "A", annotator="ann")
    assert store.last_label("ann").guidelines == v1.version


def test_a_rating_records_the_version_shown(store):
    feedback = FeedbackService(store, feeds=None)
    v1 = feedback.guidelines.set(V1, "default")
    gen = store.add_generation(MSG, "Paris.", model="m", prompt_set="default")
    shown = ShownResponse(
        gen, MSG[-1]["content"], "Paris.", "default", "k1", feedback.guidelines.version_for("default")
    )
    feedback.guidelines.set(V2, "default")
    feedback.rate(shown, "up", annotator="ann")
    assert store.last_label("ann", "feedback").guidelines == v1.version
    assert store.feedback_rows()[0]["guidelines"] == v1.version


def test_only_admins_set_guidelines_and_everyone_reads_them(store):
    guidelines = GuidelinesService(store)
    access.configure(role_of=lambda name: access.ADMIN if name == "boss" else access.ANNOTATOR)
    try:
        with access.acting_as(access.caller_for("ann")):
            with pytest.raises(UserError, match="for admins"):
                guidelines.set(V1, "default")
            assert guidelines.current("default") is None  # nothing was saved
        with access.acting_as(access.caller_for("boss")):
            saved = guidelines.set(V1, "default", author="someone else")
        assert saved.author == "boss"  # the signed-in admin, whatever the caller says
        with access.acting_as(access.caller_for("ann")):
            assert guidelines.current("default").version == saved.version
    finally:
        access.reset()


def test_bad_guidelines_name_the_field_and_save_nothing(store):
    guidelines = GuidelinesService(store)
    with pytest.raises(UserError, match="the guidelines are empty"):
        guidelines.set("  \n ", "default")
    with pytest.raises(UserError, match="the guidelines is 50,001 characters"):
        guidelines.set("x" * 50_001, "default")
    with pytest.raises(UserError, match="the campaign is"):
        guidelines.set(V1, "c" * 101)
    assert guidelines.history() == []


def test_each_annotator_reads_a_version_open_once(store):
    guidelines = GuidelinesService(store)
    v1 = guidelines.set(V1)
    assert guidelines.first_read("ann", v1.version) and not guidelines.first_read("ann", v1.version)
    assert guidelines.first_read("bob", v1.version)
    v2 = guidelines.set(V2)
    assert guidelines.first_read("ann", v2.version)  # a new version opens again
    assert not guidelines.first_read("ann", "")  # no guidelines: nothing to open


def test_an_old_store_file_gains_the_guidelines_column_with_its_labels_kept(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, kind TEXT NOT NULL,"
            " pair_id TEXT, gen_id TEXT, verdict TEXT, shown_left TEXT, annotator TEXT NOT NULL DEFAULT '',"
            " source TEXT NOT NULL, rationale TEXT NOT NULL DEFAULT '', target TEXT, created REAL NOT NULL);"
            "INSERT INTO events(id, kind, verdict, source, created) VALUES ('old', 'preference', 'A', 'human', 1.0);"
        )
    conn.close()
    store = Store(path)
    try:
        [old] = store.labels()
        assert old.id == "old" and old.guidelines is None
    finally:
        store.close()


def test_a_snapshot_and_its_card_name_the_versions_labels_were_given_under(store, workspace):
    import datasets

    from alignstudio.services.data.snapshots import dpo_rows, export_snapshot

    labeling = LabelingService(store, feeds=None)
    unguided = _show(labeling, store)
    labeling.label(unguided, "left", annotator="ann")
    assert all("guidelines" not in row for row in dpo_rows(store))  # no guidelines anywhere: no column
    v1 = labeling.guidelines.set(V1, "default")
    labeling.label(_show(labeling, store), "left", annotator="ann")
    labeling.label(_show(labeling, store), "right", annotator="bob")
    assert [row["guidelines"] for row in dpo_rows(store)] == [None, v1.version, v1.version]
    snapshot = export_snapshot(store, workspace, "dpo")
    assert datasets.load_from_disk(str(snapshot.path))["guidelines"] == [None, v1.version, v1.version]
    card = (snapshot.path / "README.md").read_text()
    assert f"Guidelines versions the labels were given under: `{v1.version}` (2 labels); 1 labels without" in card


def test_the_panel_opens_once_per_annotator_and_version_and_shows_no_html_of_the_author(services):
    import gradio as gr

    from alignstudio.ui import guidelines as panel

    v1 = services.labeling.guidelines.set(
        V1 + "\n\n<script>alert(1)</script> [x](javascript:alert(1)) ![i](http://e/i.png)"
    )
    state = {"shown": _show(services.labeling, services.store).__dict__}
    html, showing = panel.show(services, state, "ann", None)
    assert showing == v1.version and "<details" in html and " open>" in html and v1.version in html
    assert "<h1>Be kind</h1>" in html and "<strong>correct</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html and "<img" not in html
    assert panel.show(services, state, "ann", v1.version) == (gr.skip(), gr.skip())  # same version: left as is
    again, _ = panel.show(services, state, "ann", None)  # a reload: read once, collapsed now
    assert "<details" in again and " open>" not in again
    assert panel.show(services, {"shown": None}, "ann", None) == (gr.skip(), gr.skip())


def test_the_editor_saves_for_admins_only(services):
    from alignstudio.ui import guidelines as panel

    access.configure(role_of=lambda name: access.ADMIN if name == "boss" else access.ANNOTATOR)
    try:
        with access.acting_as(access.caller_for("ann")):
            assert panel.editor_visible()["visible"] is False
            with pytest.raises(UserError, match="for admins"):
                panel.save(services, "default", V1, "ann")
        with access.acting_as(access.caller_for("boss")):
            assert panel.editor_visible()["visible"] is True
            said = panel.save(services, "default", V1, "boss")
        assert f"Saved version `{_h(V1)}` for campaign default" in said
        state = {"shown": _show(services.labeling, services.store).__dict__}
        assert panel.editor_start(services, state) == ("default", V1 + "\n")
    finally:
        access.reset()


@pytest.mark.slow  # each command opens the services (torch and all): tens of seconds on a busy core
def test_the_cli_sets_and_lists_versions(tmp_path):
    from servers import cli

    ws = tmp_path / "ws"
    store = Store(Workspace.open(ws).db_path)
    GuidelinesService(store).set(V1, "default")
    store.close()
    rules = tmp_path / "rules.md"
    rules.write_text(V2)
    saved = cli("guidelines", "--set", str(rules), "--campaign", "default", workspace=ws)
    assert saved.returncode == 0 and f"saved version {_h(V2)}" in saved.stdout, saved.stderr
    history = cli("guidelines", "--campaign", "default", "--history", workspace=ws)
    assert [line.split()[0] for line in history.stdout.splitlines()] == [_h(V2), _h(V1)], history.stderr
    missing = cli("guidelines", "--set", str(tmp_path / "nope.md"), workspace=ws)
    assert missing.returncode == 2 and "cannot read the guidelines file" in missing.stderr
