"""Durability beyond kill -9: a simulated power cut keeps only what was fsync'd, and every acknowledged label
must be in it.

A kill -9 leaves the OS page cache intact, so it cannot tell `synchronous=FULL` from OFF. Here an LD_PRELOAD shim
(tests/crashsim/fsync_snapshot.c, built with gcc) copies each store file at the moment it is synced; the copies
are what a power cut would leave. The store is rebuilt from them alone and must hold every acknowledged label.
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client
from servers import start_app, stop

from alignstudio.core.store import Store

SHIM = Path(__file__).with_name("crashsim") / "fsync_snapshot.c"
LABELS = 12


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    gcc = shutil.which("gcc") or ("/usr/bin/gcc" if Path("/usr/bin/gcc").exists() else None)
    if gcc is None:
        pytest.skip("gcc is needed to build the fsync-snapshot shim for the crash simulation")
    out = tmp_path_factory.mktemp("crashsim") / "fsync_snapshot.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-o", str(out), str(SHIM), "-ldl"], check=True)
    return out


def crash_env(shim: Path, watched: Path, image: Path) -> dict:
    image.mkdir(parents=True, exist_ok=True)
    return {"LD_PRELOAD": str(shim), "CRASHSIM_WATCH": os.path.realpath(watched), "CRASHSIM_IMAGE": str(image)}


def after_power_cut(image: Path, into: Path) -> Path:
    """The folder a power cut would leave: the names of the last directory sync, each with its last synced bytes
    (empty when its data was never synced; the -shm is rebuilt by SQLite from the WAL)."""
    into.mkdir(parents=True)
    listing = image / ".dir"
    names = listing.read_text().split() if listing.exists() else []
    for name in names:
        synced = image / name
        (into / name).write_bytes(synced.read_bytes() if synced.exists() else b"")
    return into


def _config(model) -> list:
    return ["fresh samples", "default", str(model), "(same as A)", 0.7, 1.0, 0.95, 6, None]


@pytest.mark.slow
def test_every_acknowledged_label_was_synced_before_the_acknowledgement(tmp_path, tiny_model_dir, shim):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    image = tmp_path / "synced"
    proc, url = start_app(workspace, tiny_model_dir, "--prefetch", "2", env=crash_env(shim, workspace, image))
    acked: list[str] = []
    try:
        client = Client(url, verbose=False)
        client.predict("dur", *_config(tiny_model_dir), api_name="/label_first_pair")
        for i in range(LABELS):
            endpoint = "/label_left" if i % 2 else "/label_right"
            client.predict("dur", f"acked {i}", *_config(tiny_model_dir), api_name=endpoint)
            acked.append(f"acked {i}")  # the server answered: acknowledged
            client.predict("dur", *_config(tiny_model_dir), api_name="/label_next")
        os.kill(proc.pid, signal.SIGKILL)  # then the power goes: only the synced image survives
        proc.wait()
    finally:
        stop(proc)
    assert {label.rationale for label in Store(workspace / "store.sqlite").labels()} >= set(acked)  # page cache
    survivor = after_power_cut(image, tmp_path / "after")
    store = Store(survivor / "store.sqlite")
    try:
        stored = {label.rationale for label in store.labels() if label.annotator == "dur"}
        assert set(acked) <= stored, f"lost in the power cut: {sorted(set(acked) - stored)}"
        assert store.integrity_ok()
    finally:
        store.close()


_UNSYNCED_WRITER = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=" + sys.argv[2])
db.execute("CREATE TABLE t(x)")
for i in range(5):
    db.execute("INSERT INTO t VALUES (?)", (i,))
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("mode, survivors", [("FULL", 5), ("NORMAL", 0), ("OFF", 0)])
def test_the_crash_model_loses_exactly_the_unsynced_commits(tmp_path, shim, mode, survivors):
    """The harness's own check: with synchronous below FULL the commits sit unsynced in the WAL and the power cut
    takes them, while kill -9 alone would have kept them all."""
    folder, image = tmp_path / "w", tmp_path / "synced"
    folder.mkdir()
    subprocess.run(
        [sys.executable, "-c", _UNSYNCED_WRITER, str(folder / "s.db"), mode],
        env=os.environ | crash_env(shim, folder, image),
    )
    killed = sqlite3.connect(folder / "s.db")
    assert killed.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 5  # kill -9 alone loses nothing
    killed.close()
    survivor = after_power_cut(image, tmp_path / "after") / "s.db"
    db = sqlite3.connect(survivor)
    try:
        has_table = db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name='t'").fetchone()[0]
        assert (db.execute("SELECT COUNT(*) FROM t").fetchone()[0] if has_table else 0) == survivors
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
