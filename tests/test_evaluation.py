"""Evaluation end to end on tiny models: the service, `alignstudio eval` / `alignstudio judge` as users run
them, remote generation through the OpenAI-compatible client, and the Evaluate tab's handlers."""

import json
import os
import subprocess
import sys

import pytest
from fake_llm_server import FakeLLMServer, fenced_responses, verdict_json
from servers import ROOT

from alignstudio.core.errors import UserError
from alignstudio.core.formats import load_prompts
from alignstudio.services.evaluation import (
    EvalSettings,
    evaluate,
    list_reports,
    load_report,
    save_report,
    summary_markdown,
)
from alignstudio.services.judges import make_judge
from alignstudio.services.judges.protocol import JudgeCache

EVAL_PROMPTS = ROOT / "data" / "eval_prompts.jsonl"
HELDOUT = "The honeybee lives in colonies that can hold tens of thousands of workers. " * 8
NUMBERS = ("wins", "ties", "losses", "win_rate", "lc_win_rate", "position_inconsistency_rate")


@pytest.fixture(scope="module")
def second_tiny_dir(tmp_path_factory):
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny2") / "tiny-b", seed=1)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.core.store import Store
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.sampling.generators import GeneratorPool

    ws = Workspace.open(tmp_path_factory.mktemp("evalpool") / "ws")
    return GeneratorPool(ModelRegistry(ws, Store(ws.db_path)))


def check_report(report, n):
    r = report["results"]
    assert r["n"] == n and r["wins"] + r["ties"] + r["losses"] + r["failed"] == n
    for key in NUMBERS:
        assert r[key] is not None, key
    low, high = r["win_rate_ci"]
    assert low is not None and low <= r["win_rate"] <= high
    assert 0 <= r["lc_win_rate"] <= 1
    assert report["lengths"]["model_mean_words"] is not None and report["lengths"]["baseline_mean_words"] is not None
    assert set(report["pathologies"]["model"]) == {"verbose", "sycophantic", "evasive", "repetitive", "degenerate"}
    assert len(report["samples"]) == n and all(s["model"] is not None for s in report["samples"])


def test_evaluate_service_reports_every_number(pool, tiny_model_dir, second_tiny_dir, tmp_path):
    prompts = load_prompts(EVAL_PROMPTS)
    model, baseline = pool.get(str(second_tiny_dir)), pool.get(str(tiny_model_dir))
    stages = []
    typed = evaluate(
        model,
        baseline,
        prompts,
        make_judge("rules"),
        settings=EvalSettings(limit=6, max_new_tokens=12, n_resamples=500),
        cache=JudgeCache(tmp_path / "c.sqlite"),
        heldout_text=HELDOUT,
        prompts_source="eval",
        progress=lambda f, d: stages.append(f),
    )
    report = typed.to_dict()  # the report file's format
    check_report(report, 6)
    tax = report["alignment_tax"]
    assert tax["model"]["perplexity"] > 1 and tax["baseline"]["perplexity"] > 1 and "change_pct" in tax
    assert report["model"] == model.name and report["judge"]["name"] == "rules"
    assert stages[0] == 0.0 and stages[-1] == 1.0 and stages == sorted(stages)
    assert typed.results.n == 6 and typed.model == model.name
    path = save_report(typed, tmp_path / "evals" / "r.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))  # the file is the report's to_dict
    assert load_report(path).to_dict() == json.loads(json.dumps(report))
    text = summary_markdown(typed)
    assert "wins / ties / losses" in text and "length-controlled" in text and "perplexity" in text
    with pytest.raises(UserError):
        save_report(typed, tmp_path / "r.txt")


def cli(*args, workspace, env=None):
    return subprocess.run(
        [sys.executable, "-m", "alignstudio", "--workspace", str(workspace), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_eval_cli_with_the_local_judge_writes_all_numbers(tmp_path, tiny_model_dir, second_tiny_dir):
    out = tmp_path / "report.json"
    heldout = tmp_path / "heldout.txt"
    heldout.write_text(HELDOUT)
    result = cli(
        "eval",
        "--model",
        str(second_tiny_dir),
        "--baseline",
        str(tiny_model_dir),
        "--prompts",
        str(EVAL_PROMPTS),
        "--judge",
        "local",
        "--judge-model",
        str(tiny_model_dir),
        "--out",
        str(out),
        "--limit",
        "4",
        "--max-new-tokens",
        "8",
        "--heldout",
        str(heldout),
        workspace=tmp_path / "ws",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    check_report(report, 4)
    assert report["judge"]["kind"] == "local" and report["usage"]["input_tokens"] > 0
    assert report["alignment_tax"]["model"]["perplexity"] > 1
    assert "wrote the report to" in result.stdout and "win rate" in result.stdout
    assert (tmp_path / "ws" / "judge_cache" / "judge.sqlite").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            [
                "eval",
                "--model",
                "x",
                "--baseline",
                "y",
                "--prompts",
                str(EVAL_PROMPTS),
                "--judge",
                "rules",
                "--out",
                "r.txt",
            ],
            "must be a .json",
        ),
        (
            [
                "eval",
                "--model",
                "x",
                "--baseline",
                "y",
                "--prompts",
                "missing.jsonl",
                "--judge",
                "rules",
                "--out",
                "r.json",
            ],
            "does not exist",
        ),
        (["judge", "--pairs", "p.jsonl", "--store", "--judge", "rules"], "one of them"),
        (["judge", "--store", "--judge", "telepathy"], "unknown judge"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = cli(*args, workspace=tmp_path / "ws")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (ROOT / "r.json").exists()


def test_judge_cli_on_a_file_with_an_openai_compatible_server(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [
        {
            "id": f"q{i}",
            "prompt": f"Question {i}?",
            "response_a": "A long and careful answer " * (i + 1),
            "response_b": "Short.",
        }
        for i in range(3)
    ]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "verdicts.jsonl"
    with FakeLLMServer(api_key="sk-cli-secret") as server:
        server.fail_next(429)
        result = cli(
            "judge",
            "--pairs",
            str(pairs),
            "--judge",
            "openai",
            "--judge-model",
            "served",
            "--judge-base-url",
            server.openai_url,
            "--out",
            str(out),
            "--price-in",
            "1",
            workspace=tmp_path / "ws",
            env={"OPENAI_API_KEY": "sk-cli-secret"},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(server.requests) == 7  # 6 calls and one retry after the 429
    verdicts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [v["verdict"] for v in verdicts] == ["A", "A", "A"] and all(v["consistent"] for v in verdicts)
    assert "judge:openai-served" in result.stdout and "$" in result.stdout
    everything = (
        out.read_text()
        + result.stdout
        + result.stderr
        + (tmp_path / "ws" / "judge_cache" / "judge.sqlite").read_bytes().decode("latin-1")
    )
    assert "sk-cli-secret" not in everything


def test_judge_cli_labels_the_store_and_honours_the_kappa_gate(tmp_path):
    from alignstudio.core.store import Store
    from alignstudio.core.workspace import Workspace

    ws = Workspace.open(tmp_path / "ws")
    store = Store(ws.db_path)
    for i in range(3):
        store.add_pair(
            [{"role": "user", "content": f"Q{i}?"}], "A complete, careful answer.", "No.", model_a="m", model_b="m"
        )
    store.close()
    gated = cli("judge", "--store", "--judge", "rules", "--min-kappa", "0.3", workspace=ws.root)
    assert gated.returncode == 2 and "no measurable agreement" in gated.stderr
    result = cli("judge", "--store", "--judge", "rules", "--out", str(tmp_path / "v.jsonl"), workspace=ws.root)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "recorded 3 preference events with source judge:rules" in result.stdout
    labels = Store(ws.db_path).labels()
    assert [(lab.verdict, lab.source) for lab in labels] == [("A", "judge:rules")] * 3
    assert len((tmp_path / "v.jsonl").read_text().splitlines()) == 3


def test_eval_with_a_remote_model_skips_its_perplexity(pool, tiny_model_dir, tmp_path):
    from alignstudio.services.sampling.remote import RemoteGenerator

    def responder(body):
        if "<<<RESPONSE A" in json.dumps(body):  # a judge request
            a, b = fenced_responses(body)
            return verdict_json("A" if len(a) > len(b) else "B")
        return "A remote answer with a good number of words in it, for the evaluation."

    with FakeLLMServer(api_key=None, responder=responder) as server:
        remote = RemoteGenerator("served-model", server.openai_url)
        judge = make_judge("openai", model="judge", base_url=server.openai_url)
        report = evaluate(
            remote,
            pool.get(str(tiny_model_dir)),
            load_prompts(EVAL_PROMPTS),
            judge,
            settings=EvalSettings(limit=3, max_new_tokens=8, n_resamples=200),
            heldout_text=HELDOUT,
        ).to_dict()
    assert report["model"] == "remote:served-model"
    assert "remote model" in report["alignment_tax"]["model"]["skipped"]
    assert report["alignment_tax"]["baseline"]["perplexity"] > 1
    assert report["usage"]["calls"] == 6 and report["usage"]["input_tokens"] > 0
    assert report["results"]["judged"] == 3


# -- the Evaluate tab's handlers (no browser) -------------------------------------------------------------------


@pytest.fixture
def services(tmp_path, tiny_model_dir):
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services

    services = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir))
    yield services
    services.close()


def test_evaluate_tab_handlers(services, tiny_model_dir):
    import gradio as gr

    from alignstudio.ui import evaluate as tab

    model = str(tiny_model_dir)
    secret = "sk-never-echo"
    outputs = tab.run_evaluation(
        services,
        model,
        model,
        "eval",
        tab.eval_settings(3, 8, 0, True),
        tab.judge_config("rules", "", "", secret, "Helpfulness\nBrevity"),
    )
    summary, pathologies, samples, report_json, name = outputs
    assert "wins / ties / losses" in summary and len(samples) == 3 and list(pathologies["pathology"])[0] == "verbose"
    assert json.loads(report_json)["judge"]["criteria"] == ["Helpfulness", "Brevity"]
    assert [p.name for p in list_reports(services.workspace)] == [name]
    assert tab.show_report(services, name)[0] == summary
    assert all(secret not in str(value) for value in outputs)

    for i in range(2):
        services.store.add_pair(
            [{"role": "user", "content": f"Q{i}?"}], "A careful full answer.", "No.", model_a="m", model_b="m"
        )
    status, table = tab.judge_pairs_in_store(
        services, "unlabeled", False, 0.4, None, tab.judge_config("rules", "", "", secret, "", concurrency=4)
    )
    assert "Recorded **2** events" in status and secret not in status
    assert list(table["rater"]) == ["human", "judge:rules"]
    with pytest.raises(UserError, match="no measurable agreement"):
        tab.judge_pairs_in_store(
            services, "unlabeled", True, 0.5, 0, tab.judge_config("rules", "", "", "", "", concurrency=4)
        )

    with gr.Blocks() as demo:  # the tab builds and wires
        with gr.Tab("Evaluate") as eval_tab:
            view = tab.build(services)
        tab.wire(view, services, eval_tab)
    assert view.judge_key.type == "password" and view.run.elem_id == "eval-run"
    assert demo is not None
