"""The run state machine and the RunManager queue, with a stand-in worker script (milliseconds, no torch)."""

import json
import os
import subprocess
import sys

import pytest
from stand_in_worker import STAND_IN, wait_for

from alignstudio.core.errors import UserError
from alignstudio.training.run_folder import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    STATES,
    SUCCEEDED,
    TRANSITIONS,
    IllegalTransition,
    RunFolder,
    check_transition,
)
from alignstudio.training.run_queue import RunManager
from alignstudio.training.spec import RunSpec


@pytest.fixture
def manager(workspace, store, tmp_path):
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    mgr = RunManager(workspace, store, command=[sys.executable, str(script)])
    yield mgr
    mgr.close()  # no worker outlives the tests


def stand_in(mode: str, **kw) -> RunSpec:
    return RunSpec(method="dpo", model="tiny", data=mode, **kw)


def test_transition_table_is_the_documented_state_machine():
    assert TRANSITIONS[QUEUED] == (RUNNING, CANCELLED, FAILED)
    assert TRANSITIONS[RUNNING] == (SUCCEEDED, FAILED, CANCELLED)
    assert TRANSITIONS[FAILED] == (QUEUED,) and TRANSITIONS[CANCELLED] == (QUEUED,) and TRANSITIONS[SUCCEEDED] == ()
    for current in STATES:
        for new in STATES:
            if new in TRANSITIONS[current]:
                check_transition(current, new)
            else:
                with pytest.raises(IllegalTransition):
                    check_transition(current, new)


def test_run_folder_rejects_illegal_transitions(tmp_path):
    run = RunFolder.create(tmp_path / "r", stand_in("succeed"))
    assert run.state == QUEUED and run.spec().data == "succeed"
    with pytest.raises(IllegalTransition, match="cannot become succeeded"):
        run.transition(SUCCEEDED)
    run.transition(RUNNING, pid=123)
    with pytest.raises(IllegalTransition):
        run.transition(RUNNING)
    with pytest.raises(IllegalTransition, match="not queued"):
        run.transition(CANCELLED, expect=QUEUED)
    run.transition(FAILED, error="boom")
    status = run.transition(QUEUED, note="resume")
    assert status["error"] is None and status["pid"] is None
    run.transition(RUNNING)
    run.transition(SUCCEEDED)
    with pytest.raises(IllegalTransition, match="final"):
        run.transition(QUEUED)
    assert [h["state"] for h in run.status()["history"]] == [QUEUED, RUNNING, FAILED, QUEUED, RUNNING, SUCCEEDED]
    with pytest.raises(UserError, match="already exists"):
        RunFolder.create(tmp_path / "r", stand_in("succeed"))


def test_start_runs_the_worker_with_output_in_the_log(manager):
    name = manager.start(stand_in("succeed"), "first")
    status = manager.wait(name, timeout=20)
    assert status.state == SUCCEEDED and status.pid
    assert "stand-in succeed" in manager.log_tail(name)
    assert manager.metrics(name) == [{"step": 1, "loss": 0.69}]
    assert [i.name for i in manager.list()] == ["first"] and manager.list()[0].state == SUCCEEDED
    with pytest.raises(IllegalTransition):
        manager.resume(name)
    with pytest.raises(IllegalTransition):
        manager.cancel(name)
    with pytest.raises(UserError, match="already exists"):
        manager.start(stand_in("succeed"), "first")


def test_sweep_queues_runs_that_differ_only_in_beta_and_run_one_at_a_time(manager, workspace):
    names = manager.sweep(stand_in("slow"), betas=[0.05, 0.1, 0.5], name="sw")
    assert names == ["sw-beta0.05", "sw-beta0.1", "sw-beta0.5"]
    for name in names:
        assert manager.wait(name, timeout=30).state == SUCCEEDED
    specs = [manager.spec(n).to_dict() for n in names]
    assert [s.pop("beta") for s in specs] == [0.05, 0.1, 0.5]
    assert specs[0] == specs[1] == specs[2]
    events = [json.loads(line) for line in (workspace.runs_dir / "timeline.jsonl").read_text().splitlines()]
    spans = {}
    for event in events:
        spans.setdefault(event["run"], {}).update(event)
    ordered = sorted(spans.values(), key=lambda s: s["start"])
    assert [s["run"] for s in ordered] == names  # FIFO
    for before, after in zip(ordered, ordered[1:]):
        assert before["end"] <= after["start"]  # never two workers at once
    with pytest.raises(UserError, match="twice"):
        manager.sweep(stand_in("slow"), betas=[0.1, 0.1])


def test_cancel_a_running_worker_then_resume(manager):
    name = manager.start(stand_in("wait-cancel"), "c")
    wait_for(lambda: "stand-in" in manager.log_tail(name))
    status = manager.cancel(name)
    assert status.state == RUNNING and status.cancel_requested
    status = manager.wait(name, timeout=20)
    assert status.state == CANCELLED and manager.folder(name).last_checkpoint().name == "checkpoint-1"
    manager.resume(name)
    assert not manager.folder(name).cancel_requested()
    status = manager.wait(name, timeout=20)
    assert status.state == SUCCEEDED and status.resumes == 1


def test_cancel_a_queued_run_and_the_queue_moves_on(manager):
    first = manager.start(stand_in("wait-cancel"), "busy")
    second = manager.start(stand_in("succeed"), "waiting")
    assert manager.status(second).state == QUEUED
    assert manager.cancel(second).state == CANCELLED
    manager.resume(second)  # queued again, behind the busy run
    assert manager.status(second).state == QUEUED
    manager.cancel(first)
    assert manager.wait(first, timeout=20).state == CANCELLED
    assert manager.wait(second, timeout=20).state == SUCCEEDED


def test_worker_reported_failure_keeps_the_error(manager):
    name = manager.start(stand_in("fail"))
    status = manager.wait(name, timeout=20)
    assert status.state == FAILED and status.error == "ValueError: bad batch"
    assert status.error_tail.endswith("line 2")


def test_dead_worker_is_failed_as_interrupted(manager):
    name = manager.start(stand_in("crash"))
    status = manager.wait(name, timeout=20)
    assert status.state == FAILED and status.error.startswith("interrupted")
    assert status.exit_code == 3 and "stand-in crash" in (status.error_tail or "")


def test_restarted_app_notices_runs_whose_worker_is_gone(workspace, store):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = RunFolder.create(workspace.runs_dir / "dead", stand_in("succeed"))
    dead.transition(RUNNING, pid=gone.pid)
    recycled = RunFolder.create(workspace.runs_dir / "recycled", stand_in("succeed"))
    recycled.transition(RUNNING, pid=os.getpid())  # alive, but not a worker for this run
    launching = RunFolder.create(workspace.runs_dir / "launching", stand_in("succeed"))
    launching.transition(RUNNING)  # no pid yet: a launch in progress is given a grace period
    RunManager(workspace, store, command=[sys.executable, "-c", "pass"], autostart=False)
    assert dead.status()["state"] == FAILED and "interrupted" in dead.status()["error"]
    assert recycled.status()["state"] == FAILED
    assert launching.status()["state"] == RUNNING


def test_unknown_runs_and_names_are_user_errors(manager):
    with pytest.raises(UserError, match="no run"):
        manager.status("nope")
    with pytest.raises(UserError, match="run name"):
        manager.start(stand_in("succeed"), "bad name/..")


def test_cancel_and_resume_of_a_finished_run_say_so_in_plain_words(manager):
    from alignstudio.training.run_folder import actions

    name = manager.start(stand_in("ok"))
    assert manager.wait(name, timeout=30).state == SUCCEEDED
    with pytest.raises(UserError) as cancel:
        manager.cancel(name)
    assert str(cancel.value) == f"run {name} has finished; nothing to cancel"
    with pytest.raises(UserError) as resume:
        manager.resume(name)
    assert str(resume.value).startswith(f"run {name} has finished; nothing to resume")
    for error in (cancel.value, resume.value):
        assert "allowed" not in str(error) and "cannot become" not in str(error)
    assert actions(SUCCEEDED) == {"cancel": False, "resume": False, "merge": True, "evaluate": True}
    assert actions(RUNNING)["cancel"] and not actions(RUNNING)["resume"]
    assert actions(CANCELLED) == {"cancel": False, "resume": True, "merge": False, "evaluate": False}
    assert not actions(SUCCEEDED, full=True)["merge"] and not actions(SUCCEEDED, reward=True)["evaluate"]
    assert not any(actions(None).values())
