"""A rounds folder: ROUNDS_DIR/rounds.json (one row per finished round, rewritten after each so the Rounds tab
can poll it), ROUNDS_DIR/log.txt, and the rows as people read them. Also starts `alignstudio rounds` as its own
process. Knows nothing of models, judges or training: the round loop (`rounds.loop`) writes the rows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ...core import access
from ...core.errors import UserError
from ...core.workspace import Workspace
from .settings import RoundsSettings, as_arguments

# Fewer decisive (non-tie) prompts than this and a bootstrap interval means nothing: 2 wins out of 2 gives
# [1.0, 1.0], a certainty that 2 prompts cannot carry. The table then says the sample is too small.
MIN_DECISIVE_FOR_CI = 10
TABLE_COLUMNS = ["round", "policy", "sampled", "kept", "final_loss", "win_rate", "win_rate_ci (95%)", "lc_win_rate"]


def write_status(folder: Path, rows: list[dict], state: str, note: str = "", trust: dict | None = None) -> None:
    tmp = folder / "rounds.json.partial"
    old = read_rounds(folder) or {}
    trust = trust or old.get("judge_trust")
    tmp.write_text(json.dumps({"state": state, "note": note, "rounds": rows, "judge_trust": trust,
                               "updated": time.time()}, indent=2))
    tmp.replace(folder / "rounds.json")


def fixed(value, decimals: int) -> str:
    return "" if value is None else f"{float(value):.{decimals}f}"


def ci_text(row: dict) -> str:
    """A round's 95% win-rate interval as [lo, hi] (2 decimals), or why there is none worth showing."""
    ci = row.get("win_rate_ci")
    if not ci or row.get("win_rate") is None:
        return ""
    decisive = int(row.get("wins") or 0) + int(row.get("losses") or 0)
    if decisive < MIN_DECISIVE_FOR_CI:
        return f"sample too small ({decisive} decisive prompts; need {MIN_DECISIVE_FOR_CI})"
    low, high = ci
    return f"[{float(low):.2f}, {float(high):.2f}]"


def round_table(rows: list[dict]) -> list[dict]:
    """rounds.json's rows as people read them: rates with 2 decimals, the loss with 4, the interval as
    [lo, hi] or a note that too few prompts were decisive (TABLE_COLUMNS, in order)."""
    return [{"round": row.get("round"), "policy": row.get("policy"), "sampled": row.get("sampled"),
             "kept": row.get("kept"), "final_loss": fixed(row.get("final_loss"), 4),
             "win_rate": fixed(row.get("win_rate"), 2), "win_rate_ci (95%)": ci_text(row),
             "lc_win_rate": fixed(row.get("lc_win_rate"), 2)} for row in rows]


def read_rounds(folder: Path) -> dict | None:
    path = Path(folder) / "rounds.json"
    return json.loads(path.read_text()) if path.exists() else None


def rounds_root(workspace: Workspace) -> Path:
    return workspace.root / "rounds"


def launch_rounds(workspace: Workspace, name: str, base_model: str, settings: RoundsSettings,
                  prompt_set: Path, eval_set: Path) -> Path:
    """Run `alignstudio rounds` in its own process (log in the folder), so the app never blocks on it."""
    access.require_admin("rounds")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name or ""):
        raise UserError("name the rounds with letters, digits, '_', '-' or '.'")
    folder = rounds_root(workspace) / name
    if folder.exists():
        raise UserError(f"rounds {name!r} already exist; choose another name")
    folder.mkdir(parents=True)
    write_status(folder, [], "queued", "starting")
    command = [sys.executable, "-m", "alignstudio", "--workspace", str(workspace.root), "rounds",
               "--out", str(folder), "--model", base_model, "--prompts", str(prompt_set),
               "--eval-prompts", str(eval_set), *as_arguments(settings)]
    with open(folder / "log.txt", "ab") as log:
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                         cwd=Path(__file__).resolve().parents[3])
    return folder


def list_rounds(workspace: Workspace) -> list[str]:
    """Rounds folders, newest first; none for an annotator (rounds are admin data)."""
    if not access.is_admin():
        return []
    root = rounds_root(workspace)
    return sorted((p.name for p in root.iterdir() if (p / "rounds.json").exists()), reverse=True) if root.exists() else []


@dataclass
class RoundsView:
    """What the Rounds tab shows of one rounds folder: its state line, the table, the win-rate series, the log."""

    state: str
    note: str
    judge_line: str
    table: list[dict]
    win_rates: list[dict]
    log: str


def view(workspace: Workspace, name: str, log_lines: int = 40) -> RoundsView:
    access.require_admin("rounds")
    folder = rounds_root(workspace) / Path(name).name
    summary = read_rounds(folder) or {"state": "unknown", "note": "", "rounds": []}
    rows = summary["rounds"]
    log_path = folder / "log.txt"
    log = "\n".join(log_path.read_text(errors="replace").splitlines()[-log_lines:]) if log_path.exists() else ""
    trust = summary.get("judge_trust") or {}
    return RoundsView(summary["state"], summary.get("note", ""), trust.get("warning") or trust.get("line", ""),
                      round_table(rows),
                      [{"round": r["round"], "win_rate": r["win_rate"]} for r in rows if r.get("win_rate") is not None],
                      log)
