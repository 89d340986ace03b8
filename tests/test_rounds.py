"""Iterative rounds on a tiny model: two rounds through the real CLI, with per-round reports."""

import json
import subprocess
import sys

import pytest
from servers import ROOT

from alignstudio.services.rounds.loop import keep_pair


def test_keep_pair_drops_ties_short_and_identical():
    long_a, long_b = "A complete answer here.", "Another full answer."
    assert keep_pair(long_a, long_b, "A") is None
    assert keep_pair(long_a, long_b, "tie") == "tie or no verdict"
    assert keep_pair(long_a, long_b, None) == "tie or no verdict"
    assert keep_pair("ok", long_b, "B") == "short or empty answer"
    assert keep_pair(long_a, long_a + " ", "A") == "identical answers"


@pytest.mark.slow
def test_two_rounds_write_per_round_reports(tmp_path, tiny_model_dir):
    out = tmp_path / "rounds"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alignstudio",
            "--workspace",
            str(tmp_path / "ws"),
            "rounds",
            "--rounds",
            "2",
            "--model",
            str(tiny_model_dir),
            "--judge",
            "rules",
            "--pairs-per-round",
            "6",
            "--max-steps",
            "2",
            "--max-length",
            "64",
            "--max-new-tokens",
            "16",
            "--eval-limit",
            "4",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "rounds.json").read_text())
    assert summary["state"] == "succeeded" and [r["round"] for r in summary["rounds"]] == [1, 2]
    first, second = summary["rounds"]
    assert second["policy"] == first["policy_after"] != first["policy"]  # round 2 trains from round 1's policy
    for number, row in ((1, first), (2, second)):
        folder = out / f"round-{number}"
        assert (folder / "pairs.jsonl").exists() and (folder / "eval.json").exists()
        assert 0.0 <= row["win_rate"] <= 1.0 and row["kept"] >= 2
        report = json.loads((folder / "eval.json").read_text())
        assert report["results"]["wins"] + report["results"]["ties"] + report["results"]["losses"] <= 4


def test_round_table_formats_numbers_and_refuses_an_interval_from_two_prompts():
    from alignstudio.services.rounds.folder import MIN_DECISIVE_FOR_CI, TABLE_COLUMNS, ci_text, round_table

    tiny = {
        "round": 1,
        "policy": "smollm2",
        "sampled": 2,
        "kept": 2,
        "final_loss": 0.6931471805599453,
        "win_rate": 1.0,
        "win_rate_ci": [1.0, 1.0],
        "lc_win_rate": 1.0,
        "wins": 2,
        "ties": 0,
        "losses": 0,
    }
    big = tiny | {
        "round": 2,
        "final_loss": 0.41234567,
        "win_rate": 0.6875,
        "win_rate_ci": [0.4, 0.8751],
        "lc_win_rate": 0.66666,
        "wins": 11,
        "ties": 3,
        "losses": 5,
    }
    first, second = round_table([tiny, big])
    assert list(first) == TABLE_COLUMNS
    assert first["final_loss"] == "0.6931" and first["win_rate"] == "1.00"
    assert first["win_rate_ci (95%)"].startswith("sample too small (2 decisive prompts")
    assert "1.0, 1.0" not in first["win_rate_ci (95%)"] and str(MIN_DECISIVE_FOR_CI) in first["win_rate_ci (95%)"]
    assert second["win_rate_ci (95%)"] == "[0.40, 0.88]" and second["lc_win_rate"] == "0.67"
    assert ci_text({"round": 3}) == ""  # a round still running has no interval yet


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"pairs_per_round": 6, "eval_limit": 4, "judge": "rules", "force_judge": True},
        {
            "max_steps": 3,
            "learning_rate": 1e-3,
            "batch_size": 2,
            "max_length": 64,
            "beta": 0.2,
            "retrain_judge": True,
            "report_to": ["tensorboard"],
        },
    ],
)
def test_the_tab_launches_rounds_with_exactly_its_settings(changes, tmp_path):
    """The Rounds tab starts `alignstudio rounds` in its own process: its arguments, parsed by the real CLI, give
    back the settings the tab made (an empty step count stays "chosen from the pairs", not the text None)."""
    from alignstudio.cli import build_parser
    from alignstudio.cli.rounds import settings_from
    from alignstudio.services.rounds.settings import RoundsSettings, as_arguments

    settings = RoundsSettings(**changes)
    args = build_parser().parse_args(["rounds", "--out", str(tmp_path), *as_arguments(settings)])
    assert settings_from(args) == settings
