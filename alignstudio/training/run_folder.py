"""A training run as a folder, and the state machine its status follows.

A run is a folder (`workspace/runs/NAME`, or any folder the CLI names):

    spec.json      what was asked (`RunSpec`)
    status.json    the state machine: queued -> running -> succeeded | failed | cancelled,
                   and cancelled/failed -> queued on resume; an illegal transition raises
    metrics.jsonl  one JSON line per log step (written by the worker's callback)
    heldout.jsonl  one JSON line per held-out evaluation (loss, reward accuracy and margin on the split)
    log.txt        the worker's stdout and stderr (a file, never a pipe)
    cancel         flag file: present = stop at the next step, save a checkpoint
    checkpoints/   trainer checkpoints (the last 2), model/ the final model, card.json the run card
    .status.lock   the lock every status change is made under

Owns the folder's files and the legal moves between states. It must not know about queues, worker
processes or who launches them (`run_queue`), and never imports torch or TRL.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..core.errors import UserError
from ..core.locking import exclusive
from .spec import RunSpec

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    QUEUED: (RUNNING, CANCELLED, FAILED),
    RUNNING: (SUCCEEDED, FAILED, CANCELLED),
    FAILED: (QUEUED,),
    CANCELLED: (QUEUED,),
    SUCCEEDED: (),
}
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
ERROR_TAIL_LINES = 15


class IllegalTransition(UserError):
    """A run was asked to move between states the state machine does not connect."""


def check_transition(current: str, new: str, name: str = "run") -> None:
    if current not in STATES or new not in STATES:
        raise IllegalTransition(f"{name}: unknown state {current!r} -> {new!r}")
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(TRANSITIONS[current]) or "nothing (it is final)"
        raise IllegalTransition(f"{name} is {current}; it cannot become {new} (allowed: {allowed})")


def finished_words(state: str) -> str:
    """How a person says where a run that can no longer be cancelled stands."""
    return {SUCCEEDED: "has finished", FAILED: "has already failed", CANCELLED: "is already cancelled"}.get(
        state, f"is {state}"
    )


def actions(state: str | None, *, full: bool = False, reward: bool = False) -> dict[str, bool]:
    """Which of a run's actions apply in its state (the UI offers only these): cancel a queued or running run,
    resume a cancelled or failed one, merge a finished LoRA adapter, evaluate a finished policy."""
    done = state == SUCCEEDED
    return {
        "cancel": state in (QUEUED, RUNNING),
        "resume": state in (FAILED, CANCELLED),
        "merge": done and not full and not reward,
        "evaluate": done and not reward,
    }


@dataclass(frozen=True)
class RunStatus:
    """A run's status.json as the queue hands it to its callers: where the run stands, its progress and its
    outcome. The file itself stays free-form JSON written under the lock (the worker adds outcome fields);
    a field not named here is kept in `extra`."""

    state: str
    created: float | None = None
    updated: float | None = None
    queued_at: float | None = None
    started: float | None = None
    finished: float | None = None
    pid: int | None = None
    step: int | None = None
    max_steps: int | None = None
    eta_s: float | None = None
    resumes: int = 0
    cancel_requested: float | None = None
    error: str | None = None
    error_tail: str | None = None
    exit_code: int | None = None
    model_dir: str | None = None
    registered_as: str | None = None
    verdict: str | None = None
    best_step: int | None = None
    stopped_early_at: int | None = None
    checkpoint: str | None = None
    history: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> "RunStatus":
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in data.items() if k in names}, extra={k: v for k, v in data.items() if k not in names}
        )


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    """True when process `pid` exists (and, where /proc shows it, its command line mentions `marker`, so a
    recycled pid does not pass for our worker). Zombies count as dead."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[-1].split()[0] == "Z":
                return False
            if marker:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
                return marker in cmdline
        except OSError:
            return False
    return True


def _jsonl(path: Path) -> list[dict]:
    """Every complete JSON line of a file (a line being written right now is skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class RunFolder:
    """One run's folder: spec, status (with its state machine), metrics, logs. Safe across processes:
    status changes are read-modify-write under an exclusive file lock and written atomically."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()

    # -- paths -------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    spec_path = property(lambda self: self.path / "spec.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    heldout_path = property(lambda self: self.path / "heldout.jsonl")  # held-out evaluations (`eval_*` keys)
    log_path = property(lambda self: self.path / "log.txt")
    cancel_path = property(lambda self: self.path / "cancel")
    checkpoints_dir = property(lambda self: self.path / "checkpoints")
    model_dir = property(lambda self: self.path / "model")
    card_path = property(lambda self: self.path / "card.json")

    def exists(self) -> bool:
        return self.status_path.is_file() and self.spec_path.is_file()

    # -- creation ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, spec: RunSpec) -> "RunFolder":
        run = cls(path)
        if run.path.exists() and any(run.path.iterdir()):
            raise UserError(f"run folder {run.path} already exists and is not empty; choose another name")
        run.path.mkdir(parents=True, exist_ok=True)
        spec.save(run.spec_path)
        now = time.time()
        status = {
            "state": QUEUED,
            "created": now,
            "updated": now,
            "queued_at": now,
            "pid": None,
            "started": None,
            "finished": None,
            "error": None,
            "error_tail": None,
            "resumes": 0,
            "history": [{"state": QUEUED, "time": now, "note": "created"}],
        }
        _atomic_write(run.status_path, json.dumps(status, indent=2))
        return run

    # -- reading -----------------------------------------------------------------------------------
    def spec(self) -> RunSpec:
        return RunSpec.load(self.spec_path)

    def status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{self.path} is not a run folder (no status.json)") from None
        except json.JSONDecodeError:  # never expected (atomic writes); retry once
            time.sleep(0.05)
            return json.loads(self.status_path.read_text(encoding="utf-8"))

    @property
    def state(self) -> str:
        return self.status()["state"]

    def metrics(self) -> list[dict]:
        """Every complete training metrics line (a line being written right now is skipped)."""
        return _jsonl(self.metrics_path)

    def heldout(self) -> list[dict]:
        """Every held-out evaluation line: step and `eval_loss`, `eval_rewards/accuracies`, ..."""
        return _jsonl(self.heldout_path)

    def all_metrics(self) -> list[dict]:
        """Training and held-out rows in step order (held-out after the training row of its step)."""
        return sorted(self.metrics() + self.heldout(), key=lambda r: (int(r.get("step") or 0), "eval_loss" in r))

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 64_000))
                text = handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        text = text.replace("\r", "\n")
        return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])

    def card(self) -> dict | None:
        try:
            return json.loads(self.card_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def last_checkpoint(self) -> Path | None:
        if not self.checkpoints_dir.is_dir():
            return None
        found = []
        for child in self.checkpoints_dir.iterdir():
            match = re.fullmatch(r"checkpoint-(\d+)", child.name)
            if match and child.is_dir() and (child / "trainer_state.json").is_file():
                found.append((int(match.group(1)), child))
        return max(found)[1] if found else None

    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()

    # -- writing -----------------------------------------------------------------------------------
    def _locked(self):
        return exclusive(self.path / ".status.lock")

    def update(self, **fields) -> dict:
        """Change status fields other than the state."""
        if "state" in fields:
            raise ValueError("use transition() to change the state")
        with self._locked():
            status = self.status()
            status.update(fields, updated=time.time())
            _atomic_write(self.status_path, json.dumps(status, indent=2))
            return status

    def transition(self, new: str, *, expect: str | tuple[str, ...] | None = None, note: str = "", **fields) -> dict:
        """Move to state `new`; raises IllegalTransition when the state machine forbids it (or when the
        current state is not `expect`, for compare-and-set between processes)."""
        with self._locked():
            status = self.status()
            current = status["state"]
            if expect is not None and current not in ((expect,) if isinstance(expect, str) else expect):
                raise IllegalTransition(f"run {self.name} is {current}, not {expect}")
            check_transition(current, new, f"run {self.name}")
            now = time.time()
            status.update(fields)
            status["state"], status["updated"] = new, now
            if new == QUEUED:  # a queued run has no pending cancel and no old error
                self.cancel_path.unlink(missing_ok=True)
                status.update(
                    queued_at=now, pid=None, finished=None, error=None, error_tail=None, cancel_requested=None
                )
            elif new == RUNNING:
                status["started"] = status.get("started") or now
            else:
                status["finished"] = now
            status.setdefault("history", []).append({"state": new, "time": now, "note": note})
            _atomic_write(self.status_path, json.dumps(status, indent=2))
            return status


@dataclass(frozen=True)
class RunInfo:
    """One row of the run list."""

    name: str
    path: str
    state: str
    method: str
    model: str
    beta: float
    label: str
    step: int
    max_steps: int | None
    created: float
    error: str | None

    def as_row(self) -> list:
        progress = f"{self.step}/{self.max_steps}" if self.max_steps else str(self.step)
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))
        return [self.name, self.state, self.label, self.model, progress, created, self.error or ""]
