"""Fake API keys go through judging (OpenAI and Anthropic protocols), training, export and the web app; then
every file the workspace holds, every output and the served pages are searched: the keys appear nowhere."""

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from fake_llm_server import FakeLLMServer
from servers import ROOT, running_app

from alignstudio.core.errors import UserError
from alignstudio.core.store import Store
from alignstudio.services.judges import JudgeInput

pytestmark = pytest.mark.slow

OPENAI_KEY = "sk-fake-OPENAI-7d1c0ffee5ecret"
ANTHROPIC_KEY = "sk-ant-fake-ANTHROPIC-b16b00b5"


def _cli(env, *args):
    result = subprocess.run(
        [sys.executable, "-m", "alignstudio", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
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
    outputs = [
        _cli(
            env,
            "--workspace",
            str(ws),
            "sample",
            "--prompts",
            str(prompts),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "pairs.jsonl"),
            "--limit",
            "3",
            "--max-new-tokens",
            "12",
        )
    ]
    outputs.append(_cli(env, "--workspace", str(ws), "import", str(ROOT / "data" / "example_preferences.jsonl")))
    with FakeLLMServer(api_key=OPENAI_KEY) as openai_server:
        outputs.append(
            _cli(
                env,
                "--workspace",
                str(ws),
                "judge",
                "--pairs",
                str(tmp_path / "pairs.jsonl"),
                "--judge",
                "openai",
                "--judge-model",
                "fake-judge",
                "--judge-base-url",
                openai_server.openai_url,
                "--out",
                str(tmp_path / "judged-openai.jsonl"),
            )
        )
        assert openai_server.requests  # the key really was sent to the server
    with FakeLLMServer(api_key=ANTHROPIC_KEY) as anthropic_server:
        outputs.append(
            _cli(
                env,
                "--workspace",
                str(ws),
                "judge",
                "--store",
                "--scope",
                "all",
                "--judge",
                "anthropic",
                "--judge-model",
                "fake-claude",
                "--judge-base-url",
                anthropic_server.anthropic_url,
            )
        )
        assert anthropic_server.requests
    outputs.append(
        _cli(
            env,
            "--workspace",
            str(ws),
            "train",
            "--method",
            "dpo",
            "--data",
            str(ROOT / "data" / "example_preferences.jsonl"),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(ws / "runs" / "secret-run"),
            "--max-steps",
            "2",
            "--max-length",
            "64",
        )
    )
    outputs.append(
        _cli(
            env,
            "--workspace",
            str(ws),
            "export",
            "--kind",
            "dpo",
            "--out",
            str(tmp_path / "d.jsonl"),
            "--out",
            str(tmp_path / "d.parquet"),
            "--out",
            str(tmp_path / "d.csv"),
        )
    )
    with running_app(ws, tiny_model_dir) as (_, url):
        pages = [urllib.request.urlopen(url + path, timeout=30).read() for path in ("", "config")]
    needles = [OPENAI_KEY.encode(), ANTHROPIC_KEY.encode()]
    assert not _files_containing(tmp_path, needles)  # store, logs, run card, snapshots, caches, exports, app log
    assert not [n for n in needles for text in outputs if n.decode() in text]
    assert not [n for n in needles for page in pages if n in page]
    assert (ws / "runs" / "secret-run" / "card.json").exists() and (ws / "store.sqlite").exists()


def test_a_url_typed_in_the_browser_never_gets_the_servers_key(tmp_path, tiny_model_dir, monkeypatch):
    """Over the app's HTTP API: a fake OpenAI-compatible server named in the Evaluate form receives requests,
    but never the key in the app's environment; a cloud-metadata address is refused before any request."""
    from gradio_client import Client

    ws = tmp_path / "ws"
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    _cli(env, "--workspace", str(ws), "import", str(ROOT / "data" / "example_preferences.jsonl"))
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)  # the app inherits it
    with FakeLLMServer(api_key=None) as server, running_app(ws, tiny_model_dir) as (_, url):
        client = Client(url, verbose=False)
        judge = ["openai", "fake-judge", server.openai_url, "", "", True]  # kind, model, URL, key, criteria, force
        client.predict("all", False, 0.0, 2, 2, *judge, api_name="/judge_store_pairs")
        assert server.requests, "the typed server was never called"
        sent = [str(r.headers) for r in server.requests]
        assert not [h for h in sent if OPENAI_KEY in h]
        typed = ["openai", "fake-judge", server.openai_url, "sk-typed-in-the-form", "", True]
        client.predict("all", False, 0.0, 1, 1, *typed, api_name="/judge_store_pairs")
        assert "sk-typed-in-the-form" in str(server.requests[-1].headers)
        before = len(server.requests)
        events = len(Store(ws / "store.sqlite").labels())
        # refused (the browser shows the warning; the API's outputs stay as they were): nothing is called or stored
        client.predict(
            "all",
            False,
            0.0,
            1,
            1,
            "openai",
            "m",
            "http://169.254.169.254/v1",
            "",
            "",
            True,
            api_name="/judge_store_pairs",
        )
        assert len(server.requests) == before and len(Store(ws / "store.sqlite").labels()) == events


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/v1",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://[fe80::1]:8000/v1",
        "file:///etc/passwd",
        "gopher://127.0.0.1:25/",
    ],
)
def test_typed_urls_to_metadata_or_odd_schemes_are_refused(url):
    from alignstudio.core.errors import UserError
    from alignstudio.services.judges.typed_urls import check_typed_url

    with pytest.raises(UserError, match="metadata|link-local|http://HOST"):
        check_typed_url(url)
    assert check_typed_url(" http://127.0.0.1:8000/v1 ") == "http://127.0.0.1:8000/v1"


def test_configured_endpoints_get_the_environments_key_by_name_and_errors_never_echo_keys(tmp_path, monkeypatch):
    """Picked by name in the form, a configured endpoint is sent its key from the environment; a server that
    quotes the request's headers in its error reply does not get the key shown to the user."""
    from alignstudio.services.judges import endpoints, make_judge
    from alignstudio.services.judges.config import JudgeConfig, build_judge

    monkeypatch.setenv("LAB_KEY", "sk-lab-key-from-the-environment")
    with FakeLLMServer(api_key="sk-lab-key-from-the-environment") as server:
        path = tmp_path / "endpoints.json"
        path.write_text(json.dumps({"lab": {"base_url": server.openai_url, "key_env": "LAB_KEY"}}))
        endpoints.configure(endpoints.load_endpoints(path))
        try:
            judge = build_judge(
                JudgeConfig.from_form("auto", "fake-judge", "lab", "", ""),
                store=None,
                generators=None,
                default_model="smollm2",
            )
            assert judge.kind == "openai" and judge.base_url == server.openai_url
        finally:
            endpoints.configure({})
        judge.judge(JudgeInput([{"role": "user", "content": "Hi"}], "Hello there.", "Hey."))
        assert "sk-lab-key-from-the-environment" in str(server.requests[-1].headers)
    for kind in ("openai", "anthropic"):
        with FakeLLMServer(api_key="the-right-key", echo_headers=True) as server:
            url = server.openai_url if kind == "openai" else server.anthropic_url
            judge = make_judge(kind, "m", base_url=url, api_key="sk-wrong-key-typed-by-someone", max_retries=0)
            with pytest.raises(UserError) as error:
                judge.judge(JudgeInput([{"role": "user", "content": "Hi"}], "Hello.", "Hey."))
            assert "sk-wrong-key-typed-by-someone" in str(server.requests[-1].headers)  # it was sent ...
            assert "invalid api key" in str(error.value) and "sk-wrong" not in str(error.value)  # ... not shown


@pytest.mark.parametrize(
    "text, message",
    [
        ("[]", "expected"),
        ('{"x": {"base_url": "ftp://h"}}', "base_url"),
        ('{"x": {"base_url": "http://h/v1", "kind": "grpc"}}', "kind"),
        ('{"x": {"base_url": "http://h/v1", "key_env": "lower case"}}', "key_env"),
        ('{"x": {"base_url": "http://h/v1", "api_key": "sk-inline"}}', "unknown fields"),
    ],
)
def test_bad_endpoint_files_are_one_clear_error(text, message):
    from alignstudio.services.judges.endpoints import parse_endpoints

    with pytest.raises(UserError, match=message):
        parse_endpoints(text, "endpoints.json")
