"""The live trainer does not outlive the app that started it (issue 37): killed without a word, the app leaves no
orphaned trainer holding a model and the cores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
APP = """
import sys, time
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.services.live.service import LiveService
from alignstudio.services.sampling.generators import GeneratorPool
from alignstudio.training.live.folder import LiveSettings

ws = Workspace.open(sys.argv[1])
store = Store(ws.db_path)
live = LiveService(ws, store, GeneratorPool(ModelRegistry(ws, store)))
live.start("orphan", LiveSettings(model=sys.argv[2]))
live.wait("orphan", timeout=300)
print(live.folder("orphan").state()["pid"], flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # exited, not yet reaped


def test_the_trainer_stops_when_the_app_that_started_it_is_killed(tmp_path, tiny_model_dir):
    app = subprocess.Popen(
        [sys.executable, "-c", APP, str(tmp_path / "ws"), str(tiny_model_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = 0
    try:
        pid = int(app.stdout.readline().strip())  # the trainer is up, loaded and serving
        assert not _gone(pid)
        app.send_signal(signal.SIGKILL)  # no close(), no stop request: the app just dies
        app.wait()
        deadline = time.time() + 30
        while not _gone(pid) and time.time() < deadline:
            time.sleep(0.2)
        assert _gone(pid), "the live trainer outlived the app"
        state = json.loads((tmp_path / "ws" / "live" / "orphan" / "state.json").read_text())
        assert state["state"] == "stopped"
    finally:
        app.kill()
        if pid and not _gone(pid):
            os.kill(pid, signal.SIGKILL)
