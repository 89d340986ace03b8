"""Live mode's trainer (issue 37) on the tiny model: the drift budget in bursts (issue 36 item 4) and a trainer
that never outlives the process that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_live import FRACTION, label_row, prompts_by_side, same

from alignstudio.training.live.folder import LiveFolder, LiveSettings

ROOT = Path(__file__).resolve().parents[1]


def test_a_burst_over_the_drift_budget_is_discarded_and_one_within_it_is_kept(workspace, store, tiny_model_dir):
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.training.live.budget import DRIFT_FILE, LiveDrift
    from alignstudio.training.live.engine import LiveEngine, adapter_state, version_weights

    # a budget of 0.001%: any rise of the held-out text's perplexity is over it (this burst raises it)
    settings = LiveSettings(
        model=str(tiny_model_dir), steps=3, learning_rate=2e-3, heldout_fraction=FRACTION, drift_budget=0.001
    )
    folder = LiveFolder.create(workspace.root / "live" / "drift", settings)
    engine = LiveEngine(folder, ModelRegistry(workspace, store))
    engine.load()
    v0 = version_weights(folder, 0)
    train, held = prompts_by_side(6, 3)
    folder.append_labels([label_row(i, t) for i, t in enumerate(train + held)])

    over = engine.burst()
    assert over["after"]["loss"] < over["before"]["loss"]  # the preference was learned ...
    assert over["outcome"] == "discarded" and "over the drift budget" in over["note"], over  # ... but not kept
    assert over["drift"]["drift"] > over["drift"]["budget"] == 0.00001 and not over["drift"]["within"]
    assert over["drift"]["base_perplexity"] > 0
    assert folder.version_numbers() == [0] and engine.current == 0 and same(adapter_state(engine.model), v0)
    saved = json.loads((folder.path / DRIFT_FILE).read_text())  # the base's perplexity, kept for later bursts
    assert saved["base_perplexity"] == over["drift"]["base_perplexity"]

    # the same labels (still unlearned) under a budget of 50%: kept, its drift on the version's card, measured
    # against the same base perplexity (read from drift.json)
    engine.drift = LiveDrift(folder.path, 50.0)
    kept = engine.burst()
    assert kept["outcome"] == "kept" and kept["version"] == 1 and "drift" in kept["note"], kept
    assert kept["drift"]["within"] and kept["drift"]["base_perplexity"] == saved["base_perplexity"]
    assert folder.card(1)["drift"]["drift"] == kept["drift"]["drift"]
    assert folder.card(1)["labels_learned"] == 6


def test_the_drift_budget_setting_is_checked_and_defaults_to_a_batch_runs():
    from alignstudio.core.errors import UserError
    from alignstudio.training.spec_fields import RunSettings

    assert LiveSettings().drift_budget == RunSettings().drift_budget > 0
    with pytest.raises(UserError, match="drift_budget"):
        LiveSettings(drift_budget=-1).check()


PARENT = """
import sys, time
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.services.live.service import LiveService
from alignstudio.services.sampling.generators import GeneratorPool
from alignstudio.training.live.folder import LiveSettings

workspace = Workspace.open(sys.argv[1])
store = Store(workspace.db_path)
live = LiveService(workspace, store, GeneratorPool(ModelRegistry(workspace, store)))
live.start("orphan", LiveSettings(model=sys.argv[2]))
live.wait("orphan", timeout=300)
print(live.folder("orphan").state()["pid"], flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by whoever adopts it; a zombie has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


@pytest.mark.slow
def test_the_trainer_exits_when_the_process_that_started_it_dies(tmp_path, tiny_model_dir):
    from alignstudio.training.live.worker import ORPHANED

    ws = tmp_path / "ws"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(ws), str(tiny_model_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    worker = None
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"the parent printed {line!r}"
        worker = int(line)
        assert _running(worker)
        time.sleep(1.0)  # idle, waiting for labels
        assert _running(worker)
        parent.send_signal(signal.SIGKILL)  # no goodbye: the app crashed or was killed
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _running(worker), "the trainer outlived its parent"
        state = LiveFolder(ws / "live" / "orphan").state()
        assert state["state"] == "stopped" and state["error"] == ORPHANED
    finally:
        if parent.poll() is None:
            parent.kill()
        if worker is not None and _running(worker):
            os.kill(worker, signal.SIGKILL)
