"""Iterative rounds on a tiny model: two rounds through the real CLI, with per-round reports."""

import json
import subprocess
import sys

import pytest

from alignstudio.services.rounds import keep_pair
from servers import ROOT


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
        [sys.executable, "-m", "alignstudio", "--workspace", str(tmp_path / "ws"), "rounds", "--rounds", "2",
         "--model", str(tiny_model_dir), "--judge", "rules", "--pairs-per-round", "6", "--max-steps", "2",
         "--max-length", "64", "--max-new-tokens", "16", "--eval-limit", "4", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
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
