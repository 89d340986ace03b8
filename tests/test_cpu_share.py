"""The plan by which the app and a training worker share the cores (core.cpu_share): flags, thread counts,
the worker's environment and priority, and a real worker run that trains on one core while the app samples."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import torch
from servers import ROOT

from alignstudio.core import cpu_share
from alignstudio.core.cpu_share import CpuShare, lower_priority, worker_env
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.training.run_folder import SUCCEEDED
from alignstudio.training.run_queue import RunManager
from alignstudio.training.spec import RunSpec


@pytest.fixture(autouse=True)
def keep_threads(monkeypatch):
    monkeypatch.delenv(cpu_share.SHARING_ENV, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _age(path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_the_app_decodes_on_one_core_while_a_worker_trains_and_on_all_alone(tmp_path):
    share = CpuShare(tmp_path, cores=2)
    with share.sampling() as sharing:  # no worker: every core, no flag
        assert not sharing and torch.get_num_threads() == 2 and not share.app_flag.exists()
    assert share.worker_threads() == 2 and share.training()  # the worker stepped: its flag is fresh
    with share.sampling() as sharing:
        assert sharing and torch.get_num_threads() == 1 and share.app_flag.exists()
        assert share.worker_threads() == 1  # the worker leaves the app its core meanwhile
    assert not share.app_flag.exists() and share.worker_threads() == 2
    assert torch.get_num_threads() == 2  # the app's other work is not left on one core
    share.worker_done()
    assert not share.training()


def test_the_flag_stays_up_until_the_last_of_the_apps_decoders_is_done(tmp_path):
    share = CpuShare(tmp_path, cores=2)
    share.worker_threads()
    with share.sampling():  # the Label feed
        with share.sampling():  # the Feedback feed, side by side
            assert share.app_flag.exists()
        assert share.app_flag.exists() and share.worker_threads() == 1
    assert not share.app_flag.exists()


def test_every_decode_of_the_app_follows_the_plan(tmp_path, tiny_model_dir):
    """Not only the Label/Feedback feeds: the arena's streamed answers and evaluation's `complete` (and the
    local judges, through the same `Generator.decoding`) decode on one core with the flag up while a worker
    of the workspace trains, and leave every core to the app's other work afterwards."""
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.services.arena import ArenaSettings, new_battle, stream_turn
    from alignstudio.services.sampling.generators import GeneratorPool

    ws = Workspace.open(tmp_path / "ws")
    pool = GeneratorPool(ModelRegistry(ws, Store(ws.db_path)))
    generator = pool.get(str(tiny_model_dir))
    share = pool.share
    seen: list[tuple[int, bool]] = []  # (threads, flag up) at every forward of the model
    generator.model.register_forward_pre_hook(
        lambda *_: seen.append((torch.get_num_threads(), share.app_flag.exists()))
    )
    share.worker_threads()  # a worker of this workspace stepped: its flag is fresh
    for _ in stream_turn(
        new_battle(generator.name, generator.name, False),
        "Hello?",
        generator,
        generator,
        ArenaSettings(max_new_tokens=8),
    ):
        pass
    arena, seen[:] = list(seen), []
    generator.complete([[{"role": "user", "content": "Hi"}]], [0.7], top_p=0.9, max_new_tokens=8, seed=0)
    assert arena and seen and set(arena + seen) == {(1, True)}
    assert not share.app_flag.exists() and torch.get_num_threads() == share.cores
    share.worker_done()
    seen.clear()
    generator.complete([[{"role": "user", "content": "Hi"}]], [0.7], top_p=0.9, max_new_tokens=8, seed=0)
    assert set(seen) == {(share.cores, False)}  # alone: every core, no flag


def test_stale_flags_are_ignored(tmp_path):
    share = CpuShare(tmp_path, cores=2)
    share.worker_threads()
    _age(share.worker_flag, cpu_share.WORKER_STALE_S + 1)
    assert not share.training()  # a worker that stopped stepping long ago is gone
    share.app_flag.touch()
    _age(share.app_flag, cpu_share.APP_STALE_S + 1)
    assert share.worker_threads() == 2  # an app flag left by a crash holds nothing back


def test_sharing_off_is_plain_contention(tmp_path, monkeypatch):
    monkeypatch.setenv(cpu_share.SHARING_ENV, "off")
    share = CpuShare(tmp_path, cores=2)
    share.app_flag.touch()
    assert share.worker_threads() == 2 and not share.training()
    assert "OMP_WAIT_POLICY" not in worker_env({})


def test_the_worker_environment_and_priority(tmp_path):
    assert worker_env({})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert worker_env({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's own choice stays
    proc = subprocess.Popen(["sleep", "30"])
    try:
        lower_priority(proc.pid)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == os.getpriority(os.PRIO_PROCESS, 0) + cpu_share.WORKER_NICE
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="one core: nothing to share")
def test_a_real_worker_trains_on_the_core_the_app_leaves_it(tmp_path, tiny_model_dir):
    ws = Workspace.open(tmp_path / "ws")
    store = Store(ws.db_path)
    runs = RunManager(ws, store)
    share = CpuShare(ws.root)
    try:
        share.worker_threads()  # as if a worker had just stepped: the app's next decode shares
        with share.sampling():  # the app is sampling for the whole run
            spec = RunSpec(
                method="dpo",
                model=str(tiny_model_dir),
                data=str(ROOT / "data" / "example_preferences.jsonl"),
                max_steps=3,
                max_length=64,
                batch_size=2,
                learning_rate=1e-3,
            )
            name = runs.start(spec, "shared")
            status = runs.wait(name, timeout=300)
        assert status.state == SUCCEEDED, runs.log_tail(name)
        rows = [r for r in runs.metrics(name) if "loss" in r]
        assert rows and all(r["threads"] == share.cores - 1 and r["sharing"] for r in rows)
        assert not share.worker_flag.exists()  # training ended: the app gets every core back
    finally:
        runs.close()
        store.close()
