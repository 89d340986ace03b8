"""Roles: with accounts, admins run the loop and annotators label, see and change only their own labels. The
checks live in the operations (core.access), so the HTTP API cannot go around them."""

import pytest

from alignstudio.core import access
from alignstudio.core.access import ADMIN, ANNOTATOR, Caller, acting_as
from alignstudio.core.errors import UserError
from alignstudio.services.data.browser import label_table
from alignstudio.services.data.snapshots import export_snapshot
from alignstudio.services.labeling import LabelingService

MSG = [{"role": "user", "content": "Name a colour."}]
NO_FILTERS = ["all", "", "", "", "", "", ""]  # the Data tab's filters: kind, source, annotator, verdict, ...


@pytest.fixture
def roles():
    access.configure(role_of={"alice": ADMIN, "bob": ANNOTATOR}.__getitem__)
    yield
    access.reset()


def _label(store, who: str) -> str:
    pair_id = store.add_pair(MSG, "Red.", "Blue.", model_a="m", model_b="m")
    return store.add_preference(pair_id, "A", annotator=who, shown_left="A")


def test_annotators_change_and_see_only_their_own_labels(store, roles):
    alices, bobs = _label(store, "alice"), _label(store, "bob")
    with acting_as(Caller("bob", ANNOTATOR)):
        with pytest.raises(UserError, match="only your own labels"):
            store.retract(alices, annotator="bob")
        with pytest.raises(UserError, match="only your own labels"):
            store.relabel(alices, "B", annotator="bob")
        assert list(label_table(store)["annotator"]) == ["bob"]
        store.relabel(bobs, "B", annotator="bob")
    with acting_as(Caller("alice", ADMIN)):
        assert sorted(label_table(store)["annotator"]) == ["alice", "bob"]
        store.retract(alices, annotator="alice")
    assert [(label.annotator, label.verdict) for label in store.labels()] == [("bob", "B")]


def test_the_loop_is_for_admins(store, workspace, roles):
    _label(store, "bob")
    with acting_as(Caller("bob", ANNOTATOR)):
        with pytest.raises(UserError, match="export is for admins"):
            export_snapshot(store, workspace, "dpo")
        labeling = LabelingService(store, feeds=None)  # labeling is what annotators are for
        pair_id = store.add_pair(MSG, "Green.", "Pink.", model_a="m", model_b="m")
        assert not labeling.label(
            labeling._show(pair_id, "Name a colour.", "Green.", "Pink.", "default"), "left", annotator="bob"
        ).duplicate
    with acting_as(Caller("alice", ADMIN)):
        assert export_snapshot(store, workspace, "dpo").rows == 2
    # with roles in force, code that says no caller gets no admin rights (a handler that forgot to say who calls
    # must not export for anyone); the server's own work says it is the server
    with pytest.raises(UserError, match="export is for admins"):
        export_snapshot(store, workspace, "dpo")
    with acting_as(access.SERVER):
        assert export_snapshot(store, workspace, "dpo").rows == 2
    access.reset()  # no roles (the CLI): no caller may do everything
    assert export_snapshot(store, workspace, "dpo").rows == 2


def test_without_accounts_the_one_local_user_may_do_everything(store, workspace):
    with acting_as(access.caller_for(None)):
        _label(store, "anyone")
        assert export_snapshot(store, workspace, "dpo").rows == 1


def test_typed_model_paths_stay_inside_the_allowed_folders(workspace, store, tmp_path, tiny_model_dir):
    from alignstudio.core.registry import ModelRegistry

    registry = ModelRegistry(workspace, store)
    access.configure(path_roots=[workspace.root])
    try:
        assert registry.resolve(str(tiny_model_dir)).folder  # the server's own start-up: no caller, no limit
        with acting_as(access.caller_for(None)):
            with pytest.raises(UserError, match="outside the workspace"):
                registry.resolve(str(tiny_model_dir))
            with pytest.raises(UserError, match="outside the workspace"):
                registry.resolve(str(workspace.root / ".." / ".." / "etc"))
        access.configure(path_roots=[workspace.root, tiny_model_dir])
        with acting_as(access.caller_for(None)):
            assert registry.resolve(str(tiny_model_dir)).folder
    finally:
        access.reset()


def test_over_http_an_annotator_labels_but_cannot_export_or_touch_others_labels(
    tmp_path, tiny_model_dir, second_tiny_model_dir
):
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from servers import running_app

    from alignstudio.core.store import Store
    from alignstudio.services.auth import hash_password

    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hash_password('alice-password')}:admin\nbob:{hash_password('bob-password')}:annotator\n")
    config = ["fresh samples", "default", str(tiny_model_dir), "(same as A)", 0.7, 1.0, 0.95, 6, None]
    with running_app(tmp_path / "ws", tiny_model_dir, "--auth", str(users)) as (_, url):
        alice = Client(url, auth=("alice", "alice-password"), verbose=False)
        bob = Client(url, auth=("bob", "bob-password"), verbose=False)
        for client in (alice, bob):
            client.predict("", *config, api_name="/label_first_pair")
            client.predict("", "", *config, api_name="/label_left")
        store = Store(tmp_path / "ws" / "store.sqlite")
        alices = next(label.id for label in store.labels() if label.annotator == "alice")
        with pytest.raises(AppError, match="only your own labels"):
            bob.predict(alices, "", *NO_FILTERS, api_name="/data_retract")
        with pytest.raises(AppError, match="export is for admins"):
            bob.predict(api_name="/data_export")
        outside = [*config[:2], str(second_tiny_model_dir), *config[3:]]
        with pytest.raises(AppError, match="outside the workspace"):
            alice.predict("", *outside, api_name="/label_first_pair")  # admins too: a path must be allowed
        files, _, _ = alice.predict(api_name="/data_export")
        assert files
        alice.predict(alices, "", *NO_FILTERS, api_name="/data_retract")  # asks to confirm: nothing retracted yet
        assert len(Store(tmp_path / "ws" / "store.sqlite").labels()) == 2
        alice.predict(alices, "", *NO_FILTERS, api_name="/data_retract")  # the confirmation
    assert [label.annotator for label in Store(tmp_path / "ws" / "store.sqlite").labels()] == ["bob"]


def test_the_role_comes_before_the_file_system_and_paths_obey_one_policy(workspace, store, tmp_path, tiny_model_dir):
    """An annotator learns nothing about files (missing and present read the same); an admin's data, base model and
    reward judge folder must lie inside the allowed folders, whether or not they exist."""
    from alignstudio.services import training
    from alignstudio.services.container import Services
    from alignstudio.services.judges.reward import reward_model_folder
    from alignstudio.training.run_queue import RunManager
    from alignstudio.training.spec import RunSpec

    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    inside = workspace.root / "data.jsonl"
    inside.write_text(outside.read_text())
    services = Services.assemble(workspace, store, str(tiny_model_dir), RunManager(workspace, store, autostart=False))
    access.configure(role_of={"alice": ADMIN, "bob": ANNOTATOR}.__getitem__, path_roots=[workspace.root])
    try:
        with acting_as(Caller("bob", ANNOTATOR)):
            answers = set()
            for path in (outside, tmp_path / "missing.jsonl", inside):
                with pytest.raises(UserError) as refused:
                    training.spec_from_form({"method": "dpo", "model": "m", "data_file": str(path)})
                answers.add(str(refused.value))
            assert answers == {"training is for admins; you are signed in as an annotator"}
        with acting_as(Caller("alice", ADMIN)):
            for path in (outside, tmp_path / "missing.jsonl"):
                with pytest.raises(UserError, match="outside the workspace"):
                    training.spec_from_form({"method": "dpo", "model": "m", "data_file": str(path)})
            assert training.spec_from_form({"method": "dpo", "model": "m", "data_file": str(inside)}).data
            # a base model outside the allowed folders is refused before anything is queued
            with pytest.raises(UserError, match="outside the workspace"):
                services.runs.start(RunSpec(method="dpo", model=str(tiny_model_dir), data=str(inside)))
            with pytest.raises(UserError, match="outside the workspace"):
                services.runs.start(RunSpec(method="dpo", model="m", data=str(outside)))
            with pytest.raises(UserError, match="outside the workspace"):
                reward_model_folder(str(tiny_model_dir), None)
    finally:
        access.reset()


def test_a_training_worker_checks_its_specs_paths_against_the_apps_policy(workspace, store, tmp_path, tiny_model_dir):
    """The worker is a separate process: the app hands it the allowed folders, and it refuses a spec (written by
    hand here, past the app's own checks) whose data or base model lies outside them, before loading either."""
    import json
    import os
    import subprocess
    import sys

    from servers import ROOT

    from alignstudio.training.run_folder import RunFolder
    from alignstudio.training.spec import RunSpec

    data = workspace.root / "pairs.jsonl"
    data.write_text((ROOT / "data" / "example_preferences.jsonl").read_text())
    outside_data = tmp_path / "pairs.jsonl"
    outside_data.write_text(data.read_text())
    cases = {
        "data": RunSpec(method="dpo", model=str(tiny_model_dir), data=str(outside_data), max_steps=1),
        "model": RunSpec(method="dpo", model=str(tiny_model_dir), data=str(data), max_steps=1),
    }
    for name, spec in cases.items():
        run = RunFolder.create(workspace.runs_dir / name, spec)
        env = os.environ | {access.PATH_ROOTS_ENV: str(workspace.root), "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "alignstudio.training.worker", str(run.path), "--workspace", str(workspace.root)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        status = json.loads((run.path / "status.json").read_text())
        assert done.returncode == 1 and status["state"] == "failed", done.stderr[-2000:]
        assert "outside the workspace" in status["error"], status["error"]
        assert not (run.path / "model").exists()


def test_an_annotator_gets_one_answer_for_a_missing_label_and_someone_elses(store, roles):
    alices = _label(store, "alice")
    with acting_as(Caller("bob", ANNOTATOR)):
        answers = []
        for event_id in (alices, "no-such-id"):
            for change in (
                lambda e: store.retract(e, annotator="bob"),
                lambda e: store.relabel(e, "B", annotator="bob"),
            ):
                with pytest.raises(UserError) as refused:
                    change(event_id)
                answers.append(str(refused.value).replace(event_id, "ID"))
        assert answers[:2] == answers[2:], answers
        assert "only your own labels" in answers[0]


def test_filling_the_queue_checks_the_role_before_building_its_scorer(store, roles):
    from alignstudio.services.labeling.active import scorer

    with acting_as(Caller("bob", ANNOTATOR)):  # a reward model would be loaded first: refused before that
        with pytest.raises(UserError, match="filling the labeling queue is for admins"):
            scorer(None, judge="reward", judge_model="/etc")
