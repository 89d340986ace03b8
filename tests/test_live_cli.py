"""`alignstudio live` end to end on the tiny model: a real subprocess samples pairs from the live policy, the rules
judge (measured first: unmeasured here, with no human labels) labels them, bursts run, and the versions come out."""

from __future__ import annotations

import json

import pytest
from servers import cli

from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace


@pytest.mark.slow
def test_live_command_runs_the_loop_with_a_judge(tmp_path, tiny_model_dir):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Tell me about topic {i}."}) + "\n" for i in range(12)))
    out = tmp_path / "live.json"
    ws = tmp_path / "ws"
    result = cli(
        "live",
        *("--model", str(tiny_model_dir), "--prompts", str(prompts), "--judge", "rules", "--name", "cli"),
        *("--labels", "6", "--every", "4", "--steps", "1", "--max-new-tokens", "8", "--seed", "3"),
        *("--out", str(out)),
        workspace=ws,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "judge judge:rules: too few human labels" in result.stdout  # measured before it labels
    report = json.loads(out.read_text())
    assert report["status"]["labels"] == 6 and report["status"]["state"] == "stopped"
    # a burst at the 4th label and one for the last 2 (one, when the trainer took both requests together); the
    # last one planned over all 6 labels: learned by its starting version, new, or held out
    bursts = report["bursts"]
    assert 1 <= len(bursts) <= 2
    learned = {v["number"]: v["labels_learned"] for v in report["versions"]}[bursts[-1]["from_version"]]
    assert learned + bursts[-1]["new_labels"] + bursts[-1]["heldout_labels"] == 6
    assert report["versions"][0]["name"] == "live-cli-v0"
    store = Store(Workspace.open(ws).db_path)
    pairs = [p for p in store.pairs() if p.prompt_set == "live:cli"]
    assert len(pairs) >= 6 and all(p.model_a.startswith("live-cli-v") for p in pairs)
    judged = [r for r in store.preference_rows() if r["source"] == "judge:rules"]
    assert len(judged) >= 6
    store.close()


def test_live_command_takes_the_drift_budget_and_refuses_a_bad_one(tmp_path):
    """`--drift-budget` reaches the session's settings, checked against the setting's bounds before anything
    starts (the parse and check only: no model is loaded)."""
    from alignstudio.cli import build_parser
    from alignstudio.cli.live import _settings
    from alignstudio.core.errors import UserError

    parse = build_parser().parse_args
    assert _settings(parse(["live", "--drift-budget", "0"])).drift_budget == 0
    assert _settings(parse(["live"])).drift_budget == 2.0  # a batch run's default
    with pytest.raises(UserError, match="drift_budget"):
        _settings(parse(["live", "--drift-budget", "-1"]))
