"""The CLI as users run it: a real subprocess, real files, exit codes and one-line errors."""

import json
import subprocess
import sys

import pytest
from servers import ROOT, cli

from alignstudio.cli import _module_of
from alignstudio.core.store import Store

PROMPTS = ROOT / "data" / "prompts.jsonl"


def commands(parser=None) -> list[str]:
    """The commands a parser offers (by default the whole CLI's)."""
    from alignstudio.cli import build_parser

    return list(next(a for a in (parser or build_parser())._actions if a.dest == "command").choices)


def test_every_command_has_help():
    result = cli("--help")
    assert result.returncode == 0 and "usage: alignstudio" in result.stdout
    every = commands()
    modules = {p.stem for p in (ROOT / "alignstudio" / "cli").glob("*.py")} - {"__init__", "common"}
    assert {_module_of(c) for c in every} == modules  # every command module is reachable, and only those
    for command in every:
        assert command in result.stdout
        own = cli("--workspace", "ws", command, "--help")
        assert own.returncode == 0 and "usage: alignstudio " + command in own.stdout, own.stderr


HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "pandas", "scipy", "gradio", "openai", "anthropic")


def test_parsing_a_command_line_loads_no_heavy_library():
    """Help, a mistyped flag or `users add` answer at once: building the parser (all commands, or the one named)
    imports none of the libraries the services load (torch alone took ~5 s; `--help` took 9.7 s)."""
    code = (
        "import sys; from alignstudio.cli import COMMANDS, build_parser; build_parser(); "
        "[build_parser([c, '--help']) for c in COMMANDS]; "
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_a_named_command_parses_as_with_every_command():
    from alignstudio.cli import build_parser

    argv = [
        "--workspace",
        "sample",
        "sample",
        "--prompts",
        "p.jsonl",
        "--model",
        "m",
        "--out",
        "o.jsonl",
        "--temperature",
        "0.5",
    ]
    alone = build_parser(argv)
    assert commands(alone) == ["sample"]
    assert vars(alone.parse_args(argv)) == vars(build_parser().parse_args(argv))
    assert vars(build_parser(["--work", "train", *argv[2:]]).parse_args(["--work", "train", *argv[2:]])) == vars(
        build_parser().parse_args(["--workspace", "train", *argv[2:]])
    )  # an abbreviation whose value is a command
    for other in (["--help", "sample"], ["smaple", "--out", "o"], ["--workspace", "w"]):
        assert commands(build_parser(other)) == commands()  # help or an unknown command: every command


def test_sample_writes_one_line_per_prompt(tmp_path, tiny_model_dir):
    out = tmp_path / "pairs.jsonl"
    result = cli(
        "sample",
        "--prompts",
        str(PROMPTS),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(out),
        "--limit",
        "3",
        "--max-new-tokens",
        "12",
        "--seed",
        "5",
        workspace=tmp_path / "ws",
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3
    for line in lines:
        assert line["response_a"] and line["response_b"] and line["response_a"] != line["response_b"]
        assert line["params_a"]["temperature"] == 0.7 and line["params_b"]["temperature"] == 1.0
    again = tmp_path / "again.jsonl"
    cli(
        "sample",
        "--prompts",
        str(PROMPTS),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(again),
        "--limit",
        "3",
        "--max-new-tokens",
        "12",
        "--seed",
        "5",
        workspace=tmp_path / "ws",
    )
    assert again.read_text() == out.read_text()  # seeded runs reproduce


@pytest.mark.parametrize(
    "args, message",
    [
        (["sample", "--prompts", "missing.jsonl", "--model", "smollm2", "--out", "o.jsonl"], "does not exist"),
        (["sample", "--prompts", str(PROMPTS), "--model", "no-such-model", "--out", "o.jsonl"], "unknown model"),
        (["sample", "--prompts", str(PROMPTS), "--model", "smollm2", "--out", "o.txt"], "must be a .jsonl"),
        (
            ["sample", "--prompts", str(PROMPTS), "--model", "smollm2", "--out", "o.jsonl", "--temperature-a", "9"],
            "temperature_a",
        ),
        (["export", "--kind", "dpo"], "nothing to export"),
        (["serve", "--host", "0.0.0.0"], "refusing to listen"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, args, message):
    result = cli(*args, workspace=tmp_path / "ws")
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (ROOT / "o.jsonl").exists() and not (tmp_path / "o.jsonl").exists()


def test_import_preferences_all_or_nothing(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"prompt": "2+2?", "chosen": "4", "rejected": "5"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n{broken\n")
    ws = tmp_path / "ws"
    assert cli("import", str(good), workspace=ws).returncode == 0
    result = cli("import", str(bad), workspace=ws)
    assert result.returncode == 2 and "bad.jsonl, line 2: invalid JSON" in result.stderr
    store = Store(ws / "store.sqlite")
    assert len(store.labels()) == 1 and store.labels()[0].source == "import"
    out = tmp_path / "out.jsonl"
    assert cli("export", "--out", str(out), workspace=ws).returncode == 0
    assert json.loads(out.read_text())["chosen"] == [{"role": "assistant", "content": "4"}]


def test_import_prompt_set(tmp_path):
    src = tmp_path / "mine.csv"
    src.write_text("prompt,category\nWhat is rain?,explain\n")
    result = cli("import", str(src), "--prompts", workspace=tmp_path / "ws")
    assert result.returncode == 0 and "1 prompts as prompt set 'mine'" in result.stdout


def test_validate_exit_codes_and_json(tmp_path):
    clean = tmp_path / "clean.jsonl"
    clean.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": f"Question number {i} about topic {i * 7}?",
                    "chosen": f"A careful, correct answer {i} with detail.",
                    "rejected": f"Wrong {i}.",
                }
            )
            + "\n"
            for i in range(4)
        )
    )
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"prompt": "q", "chosen": "same answer here", "rejected": "same answer here"}) + "\n")
    result = cli("validate", str(broken), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["has_errors"] and any(f["check"] == "identical_pairs" for f in report["findings"])
    ok = cli("validate", str(clean))
    assert ok.returncode == 0, ok.stdout  # warnings (here: length bias) do not fail validation
    assert cli("validate", str(tmp_path / "missing.jsonl")).returncode == 2
