"""Many annotators and crashes against the real app over its HTTP API (gradio_client): nothing acknowledged
is lost, nothing is stored twice, nobody gets somebody else's label or pair."""

import os
import signal
import sqlite3
import threading
from collections import Counter

import pytest
from gradio_client import Client
from servers import running_app, start_app, stop

from alignstudio.core.store import Store

pytestmark = pytest.mark.slow

ANNOTATORS = 16
LABELS_EACH = 25  # 400 labels from 16 concurrent annotators: each one a sample, a label and a "next" call


def config(model) -> list:
    return ["fresh samples", "default", str(model), "(same as A)", 0.7, 1.0, 0.95, 6, None]


def _annotate(url, name, model, count, acked: Counter, errors: list, stop_event=None):
    try:
        client = Client(url, verbose=False)
        client.predict(name, *config(model), api_name="/label_first_pair")
        for i in range(count):
            if stop_event is not None and stop_event.is_set():
                return
            endpoint = "/label_left" if i % 2 else "/label_right"
            client.predict(name, f"reason {i}", *config(model), api_name=endpoint)
            acked[name] += 1  # the server answered: this label is acknowledged
            client.predict(name, *config(model), api_name="/label_next")
    except Exception as exc:  # noqa: BLE001 - after a kill -9 every in-flight call fails; that is expected
        errors.append((name, repr(exc)))


def test_sixteen_annotators_lose_and_duplicate_nothing(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    acked: Counter = Counter()
    errors: list = []
    with running_app(workspace, tiny_model_dir, "--prefetch", "16") as (_, url):
        threads = [
            threading.Thread(target=_annotate, args=(url, f"ann{i:02d}", tiny_model_dir, LABELS_EACH, acked, errors))
            for i in range(ANNOTATORS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    store = Store(workspace / "store.sqlite")
    labels = store.labels()
    assert len(labels) == ANNOTATORS * LABELS_EACH == sum(acked.values())
    per_annotator = Counter(label.annotator for label in labels)
    assert per_annotator == acked  # every label under the annotator who gave it, exactly once
    pair_owner: dict[str, str] = {}
    for label in labels:  # each pair was handed to one annotator only
        assert pair_owner.setdefault(label.pair_id, label.annotator) == label.annotator
    assert len({label.id for label in labels}) == len(labels)
    assert store.integrity_ok()


def test_kill_9_mid_labeling_keeps_every_acknowledged_label(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    acked: Counter = Counter()
    errors: list = []
    proc, url = start_app(workspace, tiny_model_dir, "--prefetch", "8")
    try:
        threads = [
            threading.Thread(target=_annotate, args=(url, f"k{i}", tiny_model_dir, 10_000, acked, errors))
            for i in range(4)
        ]
        for t in threads:
            t.start()
        while sum(acked.values()) < 60:
            threading.Event().wait(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown handlers, no flush: a crash
        proc.wait()
        for t in threads:
            t.join(timeout=60)
    finally:
        stop(proc)
    snapshot = Counter(acked)
    db = sqlite3.connect(workspace / "store.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    # restart on the same workspace: the app comes back and every acknowledged label is there
    with running_app(workspace, tiny_model_dir) as (_, url2):
        Client(url2, verbose=False).predict("after", *config(tiny_model_dir), api_name="/label_first_pair")
    stored = Counter(label.annotator for label in Store(workspace / "store.sqlite").labels())
    for name, count in snapshot.items():
        assert count <= stored[name] <= count + 1, (name, count, stored[name])  # +1: in flight at the kill


def test_kill_9_of_a_training_worker(tmp_path, tiny_model_dir):
    """The run is marked failed (interrupted), the app keeps serving, and resume finishes from the checkpoint."""
    import time
    import urllib.request

    from servers import ROOT

    from alignstudio.core.workspace import Workspace
    from alignstudio.training.run_folder import FAILED, SUCCEEDED
    from alignstudio.training.run_queue import RunManager
    from alignstudio.training.spec import RunSpec

    workspace = Workspace.open(tmp_path / "ws")
    with running_app(workspace.root, tiny_model_dir) as (_, url):
        manager = RunManager(workspace, Store(workspace.db_path))
        spec = RunSpec(
            method="dpo",
            model=str(tiny_model_dir),
            data=str(ROOT / "data" / "example_preferences.jsonl"),
            max_steps=30,
            save_steps=2,
            max_length=64,
            batch_size=2,
            learning_rate=1e-3,
        )
        name = manager.start(spec, "killed")
        run = manager.folder(name)
        deadline = time.time() + 300
        while not (run.last_checkpoint() and (run.status().get("step") or 0) >= 3):
            assert time.time() < deadline and run.status()["state"] in ("queued", "running"), run.log_tail()
            time.sleep(0.2)
        os.kill(run.status()["pid"], signal.SIGKILL)
        while manager.status(name).state == "running":
            time.sleep(0.2)
        status = manager.status(name)
        assert status.state == FAILED and "interrupted" in status.error
        checkpoint_step = int(run.last_checkpoint().name.split("-")[-1])
        assert urllib.request.urlopen(url, timeout=10).status == 200  # the app never noticed
        Client(url, verbose=False).predict("still-here", *config(tiny_model_dir), api_name="/label_first_pair")

        manager.resume(name)
        final = manager.wait(name, timeout=600)
        assert final.state == SUCCEEDED and final.step == 30, run.log_tail()
        steps = [row["step"] for row in run.metrics()]
        assert steps[-1] == 30 and min(s for s in steps if s > checkpoint_step) == checkpoint_step + 1
