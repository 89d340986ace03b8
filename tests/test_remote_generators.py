"""Remote generators wherever a model is chosen: `openai:MODEL`, `anthropic:MODEL` and `ENDPOINT:MODEL` through
`GeneratorPool.get`, with the real SDK clients against a local server that speaks both protocols. Names and
settings recorded, the CLI end to end, a server that is down, retries, the concurrency cap, keys kept out."""

import json
import os
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
from fake_llm_server import FakeLLMServer
from servers import ROOT, free_port

from alignstudio.core import access
from alignstudio.core.errors import UserError
from alignstudio.core.registry import ModelRegistry
from alignstudio.services.judges import endpoints
from alignstudio.services.sampling.generators import GeneratorPool
from alignstudio.services.sampling.remote import CONCURRENCY, AnthropicGenerator, RemoteGenerator
from alignstudio.services.sampling.sampler import sample_pair
from alignstudio.services.sampling.settings import SamplingSettings

OPENAI_KEY, ANTHROPIC_KEY, LAB_KEY = "sk-openai-env-key-123", "sk-ant-env-key-456", "sk-lab-env-key-789"
PROMPT = [{"role": "user", "content": "Name a primary colour."}]
PROMPTS = ROOT / "data" / "prompts.jsonl"


def answer(body: dict) -> str:
    """Different enough answers per model, temperature and system prompt to pass the similarity filter."""
    system = body.get("system") or next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
    if "vague" in system:
        return "Hmm."
    if body.get("temperature", 1.0) < 0.8:
        return f"Red is a primary colour ({body['model']})."
    return f"Blue, like a clear summer sky, is one of the three primaries ({body['model']})."


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
        "LAB_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    yield
    endpoints.configure({})
    access.reset()


@pytest.fixture
def server():
    with FakeLLMServer(api_key=None, responder=answer) as s:
        yield s


@pytest.fixture
def remote_env(server, monkeypatch, tmp_path):
    """The SDKs' own endpoints pointed at the fake server, and an endpoint `lab` (OpenAI-compatible) on it."""
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_url)
    monkeypatch.setenv("LAB_KEY", LAB_KEY)
    path = tmp_path / "endpoints.json"
    path.write_text(
        json.dumps(
            {
                "lab": {"base_url": server.openai_url, "key_env": "LAB_KEY", "models": ["sft-7b", "sft-7b-v2"]},
                "open": {"base_url": server.openai_url},
                "claude-proxy": {"base_url": server.anthropic_url, "kind": "anthropic", "key_env": "LAB_KEY"},
            }
        )
    )
    endpoints.configure(endpoints.load_endpoints(path))
    return path


@pytest.fixture
def pool(workspace, store):
    return GeneratorPool(ModelRegistry(workspace, store))


def sent_key(request) -> str:
    return request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")


def test_the_three_name_forms_resolve_to_cached_remote_generators(pool, server, remote_env):
    cases = {
        "openai:gpt-4o-mini": (RemoteGenerator, "/v1/chat/completions", OPENAI_KEY),
        "anthropic:claude-x": (AnthropicGenerator, "/v1/messages", ANTHROPIC_KEY),
        "lab:sft-7b": (RemoteGenerator, "/v1/chat/completions", LAB_KEY),
        "claude-proxy:claude-y": (AnthropicGenerator, "/v1/messages", LAB_KEY),
    }
    for name, (cls, path, key) in cases.items():
        gen = pool.get(name)
        assert type(gen) is cls and gen.name == name and pool.get(name) is gen  # cached like a local model
        (text,) = gen.complete(
            [[{"role": "system", "content": "Be brief."}, *PROMPT]],
            [0.7],
            top_p=0.9,
            max_new_tokens=16,
            seed=3,
            min_new_tokens=2,
        )
        request = server.requests[-1]
        assert text and request.path.rstrip("/").endswith(path) and sent_key(request) == key
        assert request.body["model"] == name.split(":", 1)[1] and key not in repr(gen)
        if cls is RemoteGenerator:
            assert (request.body["temperature"], request.body["top_p"], request.body["seed"]) == (0.7, 0.9, 3)
            assert request.body["max_tokens"] == 16 and request.body["messages"][0]["role"] == "system"
        else:  # Anthropic's API takes no sampling parameters: only the length goes, the system prompt apart
            assert not {"temperature", "top_p", "seed"} & set(request.body)
            assert request.body["max_tokens"] == 16 and request.body["system"] == "Be brief."
            assert [m["role"] for m in request.body["messages"]] == ["user"]
            assert gen.params_not_sent == ("temperature", "top_p", "seed")
    assert set(pool.loaded()) == set(cases)


def test_local_names_with_a_colon_stay_local_and_keys_go_only_where_named(
    pool, server, remote_env, store, tiny_model_dir
):
    with pytest.raises(UserError, match="unknown model 'nowhere:thing'"):  # not a configured prefix: the registry's
        pool.get("nowhere:thing")
    store.register_model("lab:local-version", tiny_model_dir, kind="full")  # a version wins over a remote reading
    assert pool.get("lab:local-version").tokenizer is not None
    pool.get("open:served").complete([PROMPT], [0.7], top_p=1.0, max_new_tokens=8, seed=None)
    assert sent_key(server.requests[-1]) == "not-needed"  # no key_env: never the environment's OpenAI key
    for bad in ("openai:", "lab: spaced"):
        with pytest.raises(UserError, match="name the model"):
            pool.get(bad)


def test_a_missing_key_is_one_clear_error(pool, server, monkeypatch, remote_env):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("LAB_KEY")
    for name, variable in (("anthropic:claude-x", "ANTHROPIC_API_KEY"), ("lab:sft-7b", "LAB_KEY")):
        with pytest.raises(UserError, match=f"{name} needs an API key: set {variable}"):
            pool.get(name)


def test_a_sampled_pair_records_the_remote_names_and_settings_and_no_key(pool, server, remote_env):
    settings = SamplingSettings(temperature_a=0.7, temperature_b=1.0, top_p=0.9, max_new_tokens=24, seed=11)
    pair = sample_pair(PROMPT, settings, pool.get("openai:gpt-4o-mini"))  # one model: both sides in one call
    assert (pair.model_a, pair.model_b) == ("openai:gpt-4o-mini", "openai:gpt-4o-mini")
    assert pair.params_a == {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 24, "seed": 11}
    assert pair.params_b == {"temperature": 1.0, "top_p": 0.9, "max_new_tokens": 24, "seed": 11}
    assert sorted(r.body["seed"] for r in server.requests) == [11, 12]  # a seed per row, as the local decoder
    two = sample_pair(PROMPT, settings, pool.get("lab:sft-7b"), pool.get("anthropic:claude-x"))
    assert (two.model_a, two.model_b) == ("lab:sft-7b", "anthropic:claude-x")
    assert two.text_b.endswith("(claude-x).") and two.params_b["temperature"] == 1.0
    assert two.params_b["not_applied"] == ["temperature", "top_p", "seed"]  # asked for, not sent to Anthropic
    assert "not_applied" not in two.params_a
    recorded = json.dumps([vars(pair), vars(two)])
    assert not any(key in recorded for key in (OPENAI_KEY, ANTHROPIC_KEY, LAB_KEY))
    assert server.openai_url not in recorded  # the name says which server, the URL is not needed


def test_the_label_and_feedback_feeds_sample_from_remote_models_and_store_their_settings(
    pool, server, remote_env, workspace, store
):
    from alignstudio.services.labeling import LabelingService
    from alignstudio.services.labeling.feedback import FeedbackService
    from alignstudio.services.sampling.prefetch import FeedConfig, FeedManager
    from alignstudio.services.sampling.prompt_sets import PromptSets

    feeds = FeedManager(pool, PromptSets(workspace), depth=1)
    settings = SamplingSettings(max_new_tokens=16, seed=1)
    try:
        shown = LabelingService(store, feeds).next_pair(
            FeedConfig("default", "lab:sft-7b", "openai:gpt-4o-mini", settings), timeout=60
        )
        rated = FeedbackService(store, feeds).next_response(
            FeedConfig("default", "anthropic:claude-x", None, settings, mode="single"), timeout=60
        )
    finally:
        feeds.stop()
    pair = store.pair(shown.pair_id)
    assert (pair.model_a, pair.model_b) == ("lab:sft-7b", "openai:gpt-4o-mini")
    rows = {r["id"]: r for r in store._conn().execute("SELECT id, model, params FROM generations")}
    assert json.loads(rows[pair.gen_a]["params"])["temperature"] == 0.7
    assert json.loads(rows[pair.gen_b]["params"])["temperature"] == 1.0
    assert rows[rated.gen_id]["model"] == "anthropic:claude-x" and rated.text.endswith("(claude-x).")
    recorded = json.dumps([dict(r) for r in rows.values()])
    assert not any(key in recorded for key in (OPENAI_KEY, ANTHROPIC_KEY, LAB_KEY))


def test_retries_on_500_and_429_then_succeed(pool, server, remote_env):
    for name, path in (("lab:sft-7b", "/chat/completions"), ("anthropic:claude-x", "/messages")):
        server.requests.clear()
        server.fail_next(500, 429)
        (text,) = pool.get(name).complete([PROMPT], [0.7], top_p=1.0, max_new_tokens=8, seed=None)
        assert text and len(server.requests) == 3 and all(r.path.endswith(path) for r in server.requests)


def test_the_concurrency_cap_holds_per_generator_across_callers(pool, server, remote_env):
    server.delay = 0.15
    gen = pool.get("lab:sft-7b")
    gen.complete([PROMPT] * 8, [0.7] * 8, top_p=1.0, max_new_tokens=8, seed=None)
    assert server.max_in_flight == gen.concurrency == CONCURRENCY  # the default (4) at once, no more
    from alignstudio.services.sampling.remote_names import build, parse

    capped = build(parse("lab:sft-7b-v2"), concurrency=2)
    server.max_in_flight = 0
    callers = [
        threading.Thread(
            target=capped.complete,
            args=([PROMPT] * 3, [0.7] * 3),
            kwargs={"top_p": 1.0, "max_new_tokens": 8, "seed": None},
        )
        for _ in range(3)
    ]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert server.max_in_flight == 2 and len(server.requests) == 8 + 9


def test_a_server_that_is_down_is_one_clear_error(pool, remote_env, tmp_path):
    port = free_port()  # nothing listens there
    path = tmp_path / "down.json"
    path.write_text(json.dumps({"gpu-box": {"base_url": f"http://user:secret@127.0.0.1:{port}/v1?token=t"}}))
    endpoints.configure(endpoints.load_endpoints(path))
    from alignstudio.services.sampling.remote_names import build, parse

    gen = build(parse("gpu-box:sft"), max_retries=0)
    with pytest.raises(UserError) as error:
        gen.complete([PROMPT], [0.7], top_p=1.0, max_new_tokens=8, seed=None)
    assert str(error.value) == (
        f"generator gpu-box:sft at http://127.0.0.1:{port}/v1: cannot connect to the server after retries"
    )  # the name and the URL, without its credentials


def test_annotators_may_use_the_listed_remote_models_only(pool, server, remote_env):
    access.configure(role_of=lambda name: access.ANNOTATOR if name == "ann" else access.ADMIN)
    with access.acting_as(access.caller_for("ann")):
        pool.check("lab:sft-7b")  # offered in the lists
        for name in ("openai:gpt-4o", "lab:not-listed"):
            with pytest.raises(UserError, match="for admins"):
                pool.check(name)
            with pytest.raises(UserError, match="for admins"):
                pool.get(name)
    with access.acting_as(access.caller_for("boss")):
        pool.check("openai:gpt-4o")


def test_endpoint_files_list_models_and_reserve_the_sdk_prefixes(remote_env, workspace, tiny_model_dir):
    from alignstudio.services.container import Services
    from alignstudio.services.judges.endpoints import parse_endpoints

    assert endpoints.named("lab").models == ("sft-7b", "sft-7b-v2")
    for text, message in (
        ('{"x": {"base_url": "http://h/v1", "models": "m"}}', "models must be a list"),
        ('{"x": {"base_url": "http://h/v1", "models": ["two words"]}}', "models must be a list"),
        ('{"openai": {"base_url": "http://h/v1"}}', "reserved"),
    ):
        with pytest.raises(UserError, match=message):
            parse_endpoints(text, "endpoints.json")
    from alignstudio.ui import arena, common

    services = Services.build(workspace, default_model=str(tiny_model_dir))
    try:
        names = services.generator_names()
        assert names[: len(services.model_names())] == services.model_names()
        assert names[len(services.model_names()) :] == ["lab:sft-7b", "lab:sft-7b-v2"]
        # the Label and Feedback tabs' lists, and the Arena's, offer them (choices only: a typed name stays chosen)
        _, model_a, model_b = common.sampling_lists(services, SimpleNamespace(model_b=True))
        assert model_a["choices"] == names and model_b["choices"] == [common.SAME_MODEL, *names]
        assert "value" not in model_b
        assert all(update["choices"] == names for update in arena.model_lists(services))
    finally:
        services.close()


def test_the_arena_answers_from_remote_generators_and_reports_a_failure(pool, server, remote_env):
    from alignstudio.services.arena import ArenaSettings, new_battle, stream_turn

    battle = new_battle("lab:sft-7b", "anthropic:claude-x", anonymous=False)
    settings = ArenaSettings(temperature=0.7, max_new_tokens=32)
    *_, state = stream_turn(
        battle, "Name a primary colour.", pool.get("lab:sft-7b"), pool.get("anthropic:claude-x"), settings
    )
    assert state.complete and state.reply_left.endswith("(sft-7b).") and state.reply_right.endswith("(claude-x).")
    server.api_key = "another-key"
    with pytest.raises(UserError, match="generator (lab:sft-7b|anthropic:claude-x) at .*: the API key was rejected"):
        list(stream_turn(state, "And another?", pool.get("lab:sft-7b"), pool.get("anthropic:claude-x"), settings))


def cli(*args, env: dict):
    return subprocess.run(
        [sys.executable, "-m", "alignstudio", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"HF_HUB_OFFLINE": "1"} | env,
    )


def test_cli_sample_from_a_named_endpoint_writes_jsonl_and_stores_no_key(server, tmp_path):
    server.api_key = LAB_KEY
    config = tmp_path / "endpoints.json"
    config.write_text(json.dumps({"lab": {"base_url": server.openai_url, "key_env": "LAB_KEY"}}))
    out, ws = tmp_path / "pairs.jsonl", tmp_path / "ws"
    result = cli(
        "--workspace",
        str(ws),
        "sample",
        "--prompts",
        str(PROMPTS),
        "--limit",
        "2",
        "--model",
        "lab:sft-7b",
        "--endpoints",
        str(config),
        "--out",
        str(out),
        "--seed",
        "5",
        "--system-a",
        "Answer helpfully.",
        "--system-b",
        "Answer vaguely.",
        "--chosen",
        "a",
        env={"LAB_KEY": LAB_KEY},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and {(r["model_a"], r["model_b"]) for r in rows} == {("lab:sft-7b", "lab:sft-7b")}
    assert rows[0]["params_a"] == {
        "temperature": 0.7,
        "top_p": 0.95,
        "max_new_tokens": 128,
        "seed": 5,
        "system_prompt": "Answer helpfully.",
    }
    assert rows[0]["response_b"] == "Hmm." and all(sent_key(r) == LAB_KEY for r in server.requests)
    files = [p for p in [*ws.rglob("*"), out] if p.is_file()]
    assert any(p.name.startswith("store") for p in files)  # the synthetic pairs were stored as labeled
    for text in [result.stdout, result.stderr, *(p.read_bytes().decode("utf-8", "replace") for p in files)]:
        assert LAB_KEY not in text


def test_cli_sample_with_the_server_down_is_one_line_and_no_file(tmp_path):
    port = free_port()
    config = tmp_path / "endpoints.json"
    config.write_text(json.dumps({"lab": {"base_url": f"http://127.0.0.1:{port}/v1"}}))
    out = tmp_path / "pairs.jsonl"
    result = cli(
        "--workspace",
        str(tmp_path / "ws"),
        "sample",
        "--prompts",
        str(PROMPTS),
        "--limit",
        "2",
        "--model",
        "lab:sft-7b",
        "--endpoints",
        str(config),
        "--out",
        str(out),
        env={},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: generator lab:sft-7b at http://127.0.0.1:{port}/v1: cannot connect to the server after retries"
    )
    assert not list(tmp_path.glob("*pairs.jsonl*"))  # no file, no partial file


def test_the_commands_that_pick_generators_take_the_endpoints_file(remote_env):
    from alignstudio.cli import build_parser
    from alignstudio.cli.common import configure_endpoints

    parser = build_parser()
    for command in (
        ["sample", "--prompts", "p.jsonl", "--out", "o.jsonl"],
        ["generate", "--model", "lab:m", "--prompts", "p", "--out", "o.jsonl"],
        ["eval", "--model", "lab:m", "--baseline", "b", "--prompts", "p", "--out", "r.json"],
        ["serve"],
    ):
        args = parser.parse_args([*command, "--endpoints", str(remote_env)])
        endpoints.configure({})
        configure_endpoints(args)
        assert endpoints.names() == ["claude-proxy", "lab", "open"]
    configure_endpoints(parser.parse_args(["sample", "--prompts", "p.jsonl", "--out", "o.jsonl"]))
    assert endpoints.names() == []  # no file: no named servers
