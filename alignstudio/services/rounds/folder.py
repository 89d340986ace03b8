"""A rounds folder: ROUNDS_DIR/rounds.json (one row per finished round, rewritten after each so the Rounds tab
can poll it), ROUNDS_DIR/log.txt, and the rows as people read them. Also starts `alignstudio rounds` as its own
process, and stops it (`stop_rounds`: its whole process group, so no more remote requests go out). Knows
nothing of models, judges or training: the round loop (`rounds.loop`) writes the rows."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ...core import access
from ...core.errors import UserError
from ...core.workspace import Workspace
from ...training.run_folder import QUEUED, RUNNING, RunFolder
from .settings import RoundsSettings, as_arguments

# Fewer decisive (non-tie) prompts than this and a bootstrap interval means nothing: 2 wins out of 2 gives
# [1.0, 1.0], a certainty that 2 prompts cannot carry. The table then says the sample is too small.
MIN_DECISIVE_FOR_CI = 10
TABLE_COLUMNS = ["round", "policy", "sampled", "kept", "final_loss", "win_rate", "win_rate_ci (95%)", "lc_win_rate"]


def write_status(folder: Path, rows: list[dict], state: str, note: str = "", trust: dict | None = None) -> None:
    tmp = folder / "rounds.json.partial"
    old = read_rounds(folder) or {}
    trust = trust or old.get("judge_trust")
    tmp.write_text(
        json.dumps(
            {"state": state, "note": note, "rounds": rows, "judge_trust": trust, "updated": time.time()}, indent=2
        )
    )
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
    return [
        {
            "round": row.get("round"),
            "policy": row.get("policy"),
            "sampled": row.get("sampled"),
            "kept": row.get("kept"),
            "final_loss": fixed(row.get("final_loss"), 4),
            "win_rate": fixed(row.get("win_rate"), 2),
            "win_rate_ci (95%)": ci_text(row),
            "lc_win_rate": fixed(row.get("lc_win_rate"), 2),
        }
        for row in rows
    ]


def read_rounds(folder: Path) -> dict | None:
    path = Path(folder) / "rounds.json"
    return json.loads(path.read_text()) if path.exists() else None


def rounds_root(workspace: Workspace) -> Path:
    return workspace.root / "rounds"


def new_name(workspace: Workspace) -> str:
    """A name no rounds folder has yet, from the time it is asked for (a start with the name left empty)."""
    base = f"rounds-{time.strftime('%m%d-%H%M%S')}"
    taken = rounds_root(workspace)
    return next(name for name in (base, *(f"{base}-{i}" for i in range(2, 1000))) if not (taken / name).exists())


def launch_rounds(
    workspace: Workspace, name: str, base_model: str, settings: RoundsSettings, prompt_set: Path, eval_set: Path
) -> Path:
    """Run `alignstudio rounds` in its own process (log in the folder), so the app never blocks on it."""
    access.require_admin("rounds")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name or ""):
        raise UserError("name the rounds with letters, digits, '_', '-' or '.'")
    folder = rounds_root(workspace) / name
    if folder.exists():
        raise UserError(f"rounds {name!r} already exist; choose another name")
    folder.mkdir(parents=True)
    write_status(folder, [], "queued", "starting")
    command = [
        sys.executable,
        "-m",
        "alignstudio",
        "--workspace",
        str(workspace.root),
        "rounds",
        "--out",
        str(folder),
        "--model",
        base_model,
        "--prompts",
        str(prompt_set),
        "--eval-prompts",
        str(eval_set),
        *as_arguments(settings),
    ]
    with open(folder / "log.txt", "ab") as log:
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path(__file__).resolve().parents[3],
        )
    _launched[str(folder)] = proc
    (folder / "pid").write_text(str(proc.pid))
    return folder


_launched: dict[str, subprocess.Popen] = {}  # this server's rounds processes, to stop and reap them


def _alive(pid: int, folder: Path) -> bool:
    """Whether `pid` is still the rounds process of `folder` (not a reused id, not a zombie)."""
    try:
        return str(folder) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop_rounds(workspace: Workspace, name: str, timeout: float = 10.0) -> str:
    """Stop running rounds: SIGTERM to its process group (the round loop and what it started), SIGKILL after
    `timeout`; rounds.json then says cancelled. Sampling, judging and training stop where they are."""
    access.require_admin("rounds")
    folder = rounds_root(workspace) / Path(name or "").name
    summary = read_rounds(folder) if name else None
    if summary is None:
        raise UserError("choose rounds to stop")
    if summary.get("state") not in ("queued", "running"):
        raise UserError(f"rounds {name!r} are not running ({summary.get('state')})")
    proc = _launched.pop(str(folder), None)
    pid = proc.pid if proc is not None else int((folder / "pid").read_text()) if (folder / "pid").exists() else 0
    if pid and (proc is not None or _alive(pid, folder)):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)  # start_new_session: the group is the process's own id
            except ProcessLookupError:
                break
            deadline = time.time() + timeout
            while time.time() < deadline and (proc.poll() is None if proc is not None else _alive(pid, folder)):
                time.sleep(0.1)
            if (proc.poll() is not None) if proc is not None else not _alive(pid, folder):
                break
    for run in sorted(workspace.root.glob(f"runs/{folder.name}-round-*")):  # its training worker: own session
        if RunFolder(run).state in (QUEUED, RUNNING):
            RunFolder(run).cancel_path.write_text(str(time.time()))  # stops at its next step, as the Train tab's
    write_status(folder, summary.get("rounds", []), "cancelled", "stopped by an admin")
    return f"Rounds {name} stopped: nothing more is sampled, judged or trained."


def list_rounds(workspace: Workspace) -> list[str]:
    """Rounds folders, newest first; none for an annotator (rounds are admin data)."""
    if not access.is_admin():
        return []
    root = rounds_root(workspace)
    return (
        sorted((p.name for p in root.iterdir() if (p / "rounds.json").exists()), reverse=True) if root.exists() else []
    )


@dataclass
class RoundsView:
    """What the Rounds tab shows of one rounds folder: its state line, the table, the win-rate series, the log."""

    state: str
    note: str
    judge_line: str
    table: list[dict]
    win_rates: list[dict]
    log: str


def _ended(folder: Path) -> bool:
    """Whether the rounds process this server (or an earlier one: the pid file) started for `folder` is gone."""
    proc = _launched.get(str(folder))
    if proc is not None:
        return proc.poll() is not None
    pid_file = folder / "pid"
    return pid_file.exists() and not _alive(int(pid_file.read_text() or 0), folder)


def _last_error(log: str) -> str:
    """What a rounds process said last before it died: its `error:` line, else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or "Error" in line.split(":")[0]]
    return (errors or lines or ["the rounds process ended without a word"])[-1]


def view(workspace: Workspace, name: str, log_lines: int = 40) -> RoundsView:
    access.require_admin("rounds")
    folder = rounds_root(workspace) / Path(name).name
    summary = read_rounds(folder) or {"state": "unknown", "note": "", "rounds": []}
    rows = summary["rounds"]
    log_path = folder / "log.txt"
    log = "\n".join(log_path.read_text(errors="replace").splitlines()[-log_lines:]) if log_path.exists() else ""
    if summary["state"] in (QUEUED, RUNNING) and _ended(folder):
        summary = read_rounds(folder)  # again: it may have said how it ended just before it ended
        if summary["state"] in (QUEUED, RUNNING):  # it died before it could say so (a bad start, a crash)
            write_status(folder, rows, "failed", _last_error(log))
            summary = read_rounds(folder)
    trust = summary.get("judge_trust") or {}
    return RoundsView(
        summary["state"],
        summary.get("note", ""),
        trust.get("warning") or trust.get("line", ""),
        round_table(rows),
        [{"round": r["round"], "win_rate": r["win_rate"]} for r in rows if r.get("win_rate") is not None],
        log,
    )


@dataclass(frozen=True)
class RoundsService:
    """The Rounds tab's door: start rounds on the shipped prompt sets, list them, show one, stop one (admins)."""

    workspace: Workspace

    def start(self, name: str, base_model: str, settings: RoundsSettings) -> str:
        from ..sampling.prompt_sets import SHIPPED

        if not base_model:
            raise UserError("choose the SFT model")
        name = (name or "").strip() or new_name(self.workspace)
        launch_rounds(self.workspace, name, base_model, settings, SHIPPED["default"], SHIPPED["eval"])
        return name

    def names(self) -> list[str]:
        return list_rounds(self.workspace)

    def view(self, name: str) -> RoundsView:
        return view(self.workspace, name)

    def stop(self, name: str) -> str:
        return stop_rounds(self.workspace, name)
