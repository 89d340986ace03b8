"""Fake API keys go through judging (OpenAI and Anthropic protocols), training, export and the web app; then
every file the workspace holds, every output and the served pages are searched: the keys appear nowhere."""

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer
from servers import ROOT, running_app

pytestmark = pytest.mark.slow

OPENAI_KEY = "sk-fake-OPENAI-7d1c0ffee5ecret"
ANTHROPIC_KEY = "sk-ant-fake-ANTHROPIC-b16b00b5"


def _cli(env, *args):
    result = subprocess.run([sys.executable, "-m", "alignstudio", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def _files_containing(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {n.decode()}" for n in needles if n in data]
    return hits


def test_keys_appear_nowhere(tmp_path, tiny_model_dir):
    ws = tmp_path / "ws"
    env = os.environ | {"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "HF_HUB_OFFLINE": "1"}
    prompts = ROOT / "data" / "prompts.jsonl"
    outputs = [_cli(env, "--workspace", str(ws), "sample", "--prompts", str(prompts), "--model", str(tiny_model_dir),
                    "--out", str(tmp_path / "pairs.jsonl"), "--limit", "3", "--max-new-tokens", "12")]
    outputs.append(_cli(env, "--workspace", str(ws), "import", str(ROOT / "data" / "example_preferences.jsonl")))
    with FakeLLMServer(api_key=OPENAI_KEY) as openai_server:
        outputs.append(_cli(env, "--workspace", str(ws), "judge", "--pairs", str(tmp_path / "pairs.jsonl"),
                            "--judge", "openai", "--judge-model", "fake-judge", "--judge-base-url",
                            openai_server.openai_url, "--out", str(tmp_path / "judged-openai.jsonl")))
        assert openai_server.requests  # the key really was sent to the server
    with FakeLLMServer(api_key=ANTHROPIC_KEY) as anthropic_server:
        outputs.append(_cli(env, "--workspace", str(ws), "judge", "--store", "--scope", "all", "--judge",
                            "anthropic", "--judge-model", "fake-claude", "--judge-base-url",
                            anthropic_server.anthropic_url))
        assert anthropic_server.requests
    outputs.append(_cli(env, "--workspace", str(ws), "train", "--method", "dpo", "--data",
                        str(ROOT / "data" / "example_preferences.jsonl"), "--model", str(tiny_model_dir), "--out",
                        str(ws / "runs" / "secret-run"), "--max-steps", "2", "--max-length", "64"))
    outputs.append(_cli(env, "--workspace", str(ws), "export", "--kind", "dpo", "--out", str(tmp_path / "d.jsonl"),
                        "--out", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "d.csv")))
    with running_app(ws, tiny_model_dir) as (_, url):
        pages = [urllib.request.urlopen(url + path, timeout=30).read() for path in ("", "config")]
    needles = [OPENAI_KEY.encode(), ANTHROPIC_KEY.encode()]
    assert not _files_containing(tmp_path, needles)  # store, logs, run card, snapshots, caches, exports, app log
    assert not [n for n in needles for text in outputs if n.decode() in text]
    assert not [n for n in needles for page in pages if n in page]
    assert (ws / "runs" / "secret-run" / "card.json").exists() and (ws / "store.sqlite").exists()
