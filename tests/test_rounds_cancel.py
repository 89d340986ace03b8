"""Rounds started from the app (their own process) can be stopped: the process group ends, rounds.json says
cancelled, and the remote judge it was calling (tests/fake_llm_server.py) gets no more requests."""

import os
import time

import pytest
from fake_llm_server import FakeLLMServer
from servers import ROOT

from alignstudio.core import access
from alignstudio.core.errors import UserError
from alignstudio.services.rounds.folder import launch_rounds, read_rounds, stop_rounds
from alignstudio.services.rounds.settings import RoundsSettings


def test_stopping_rounds_ends_their_process_and_their_judge_requests(workspace, tiny_model_dir, monkeypatch):
    with FakeLLMServer(api_key=None, delay=0.5) as server:
        monkeypatch.setenv("ALIGNSTUDIO_JUDGE", "openai")  # the rounds process inherits the server's judge
        monkeypatch.setenv("ALIGNSTUDIO_JUDGE_MODEL", "judge-model")
        monkeypatch.setenv("ALIGNSTUDIO_JUDGE_BASE_URL", server.openai_url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        settings = RoundsSettings(rounds=1, pairs_per_round=16, force_judge=True, max_new_tokens=8, eval_limit=2)
        folder = launch_rounds(
            workspace,
            "r1",
            str(tiny_model_dir),
            settings,
            ROOT / "data" / "prompts.jsonl",
            ROOT / "data" / "eval_prompts.jsonl",
        )
        pid = int((folder / "pid").read_text())
        deadline = time.time() + 240
        while len(server.requests) < 3 and time.time() < deadline:
            time.sleep(0.1)
        assert len(server.requests) >= 3, (folder / "log.txt").read_text()[-2000:]
        access.configure(role_of=lambda name: access.ANNOTATOR)
        try:
            with access.acting_as(access.caller_for("ann")), pytest.raises(UserError, match="for admins"):
                stop_rounds(workspace, "r1")
        finally:
            access.reset()
        assert stop_rounds(workspace, "r1").startswith("Rounds r1 stopped")
        sent = len(server.requests)
        time.sleep(3)
        assert len(server.requests) == sent < 16 * 2  # judging stopped part-way, and nothing after
        with pytest.raises(ProcessLookupError):  # gone, and reaped
            os.kill(pid, 0)
        assert read_rounds(folder)["state"] == "cancelled"
        with pytest.raises(UserError, match="not running"):
            stop_rounds(workspace, "r1")
