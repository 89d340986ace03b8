"""Rounds started from the app that cannot run end `failed` with their error, whether the round loop said so
(a judge that cannot be built) or the process died before it could (a prompt file that is not there); names
left empty are new at each start."""

import time

from servers import ROOT

from alignstudio.services.rounds.folder import RoundsService, launch_rounds, new_name, read_rounds
from alignstudio.services.rounds.settings import RoundsSettings


def _ended(service: RoundsService, name: str, timeout: float = 180.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        shown = service.view(name)
        if shown.state not in ("queued", "running"):
            return shown
        time.sleep(0.5)
    return service.view(name)


def test_failed_starts_read_failed_with_their_error_and_empty_names_are_new(workspace, tiny_model_dir):
    service = RoundsService(workspace)
    no_judge = RoundsSettings(judge="reward", rounds=1)  # no reward model trained in this workspace
    first = service.start("", str(tiny_model_dir), no_judge)
    second = service.start("  ", str(tiny_model_dir), no_judge)  # the same second: still a new name
    assert first != second and first.startswith("rounds-") and second.startswith(first)
    for name in (first, second):
        shown = _ended(service, name)
        assert shown.state == "failed", shown.log
        assert "reward" in shown.note.lower()  # the error itself, not only in the log
        assert read_rounds(workspace.root / "rounds" / name)["state"] == "failed"  # and so it stays


def test_a_process_that_dies_before_its_first_word_reads_failed(workspace, tiny_model_dir):
    folder = launch_rounds(
        workspace,
        "no-prompts",
        str(tiny_model_dir),
        RoundsSettings(rounds=1),
        workspace.root / "missing-prompts.jsonl",  # the CLI fails before the round loop starts
        ROOT / "data" / "eval_prompts.jsonl",
    )
    assert read_rounds(folder)["state"] == "queued"
    shown = _ended(RoundsService(workspace), "no-prompts")
    assert shown.state == "failed" and "missing-prompts.jsonl" in shown.note, shown.log
    assert read_rounds(folder)["state"] == "failed"


def test_a_new_name_is_not_one_taken(workspace):
    taken = new_name(workspace)
    (workspace.root / "rounds" / taken).mkdir(parents=True)
    assert new_name(workspace) not in (taken, "")
