"""A live session's folder (workspace/live/NAME/): what the service writes and what the live worker answers.

    session.json         the settings the session started with (`LiveSettings`)
    labels.jsonl         one DPO row per label, appended by the service: id, prompt, chosen, rejected, time
    requests/            one small file per request (burst, rollback, stop), written whole (temp + rename) by the
                         service and deleted by the worker once done; the worker answers them in name order
    state.json           the worker's state (loading | ready | training | stopped | failed), its pid, the current
                         version, how many bursts ran; rewritten whole
    bursts.jsonl         one line per burst: the rows it trained on, held-out loss/accuracy before and after,
                         kept (the version it became) or discarded, and its training losses (the curve)
    versions/vN/         a kept policy: the LoRA adapter (PEFT, safetensors), card.json and learned.json
    log.txt              the worker's output
No torch here: the service and the app read the folder without loading a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ...core.errors import UserError
from ..spec_fields import RunSettings
from ..split import prompt_key

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
LOADING, READY, TRAINING, STOPPED, FAILED = "loading", "ready", "training", "stopped", "failed"
BURST, ROLLBACK, STOP = "burst", "rollback", "stop"
POLICY, AGAINST_BASE = "policy", "policy-vs-base"  # where the sampler's two answers come from


@dataclass(frozen=True)
class LiveSettings:
    """A live session's settings (defaults here, checked by `check`)."""

    model: str = "smollm2"
    every: int = 8  # a burst every K new labels
    steps: int = 8  # optimizer steps per burst
    batch_size: int = 4
    learning_rate: float = 5e-5
    beta: float = 0.1
    replay: int = 16  # earlier learned labels replayed in each burst
    heldout_fraction: float = 0.2  # of the prompts (decided by a hash of the prompt)
    lora_r: int = 16
    lora_alpha: int = 32
    max_length: int = 512
    seed: int = 0
    pairs: str = POLICY  # policy: both answers from the newest version; policy-vs-base: one from the base
    # percent: how much a burst may raise the perplexity of the shipped held-out text over the base's (0 = off);
    # a batch run's default (`RunSpec.drift_budget`, measured by `training.drift`)
    drift_budget: float = RunSettings.drift_budget

    BOUNDS = {
        "every": (1, 10_000),
        "steps": (1, 1_000),
        "batch_size": (1, 64),
        "learning_rate": (1e-8, 1e-2),
        "beta": (1e-4, 10.0),
        "replay": (0, 100_000),
        "heldout_fraction": (0.0, 0.9),
        "lora_r": (1, 256),
        "lora_alpha": (1, 1024),
        "max_length": (16, 32_768),
        "seed": (0, 2**31 - 1),
        "drift_budget": (0.0, 100.0),
    }

    def check(self) -> "LiveSettings":
        """The settings, or UserError naming the first field out of its range."""
        for name, (low, high) in self.BOUNDS.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                raise UserError(f"{name} must be between {low:g} and {high:g} (got {value!r})")
        if self.pairs not in (POLICY, AGAINST_BASE):
            raise UserError(f"pairs must be {POLICY} or {AGAINST_BASE} (got {self.pairs!r})")
        if not str(self.model).strip():
            raise UserError("model is empty: name a model")
        return self

    @classmethod
    def from_dict(cls, data: dict) -> "LiveSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


def is_heldout(prompt, fraction: float) -> bool:
    """Whether a prompt's labels are held out: a stable hash of the prompt decides, so a prompt never moves between
    training and held-out as labels arrive (sha256: Python's hash() changes between processes)."""
    digest = hashlib.sha256(prompt_key(prompt).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_labels(labels: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """(training labels, held-out labels), by prompt (`is_heldout`)."""
    heldout = [is_heldout(row["prompt"], fraction) for row in labels]
    return [r for r, h in zip(labels, heldout) if not h], [r for r, h in zip(labels, heldout) if h]


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise UserError(
            f"session name {name!r}: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return name


def version_name(session: str, number: int) -> str:
    """The registry name of a session's version (recorded with every generation sampled from it)."""
    return f"live-{session}-v{number}"


def _write_whole(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)


def _jsonl(path: Path) -> list[dict]:
    """The complete lines of a JSONL file (a line still being appended is left for the next read)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n") and line.strip():
            rows.append(json.loads(line))
    return rows


class LiveFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name

    session_path = property(lambda self: self.path / "session.json")
    labels_path = property(lambda self: self.path / "labels.jsonl")
    requests_dir = property(lambda self: self.path / "requests")
    state_path = property(lambda self: self.path / "state.json")
    bursts_path = property(lambda self: self.path / "bursts.jsonl")
    versions_dir = property(lambda self: self.path / "versions")
    log_path = property(lambda self: self.path / "log.txt")

    @classmethod
    def create(cls, path: Path, settings: LiveSettings) -> "LiveFolder":
        folder = cls(path)
        if folder.session_path.exists():
            raise UserError(f"live session {folder.name} exists already: pick another name or stop and reuse it")
        folder.requests_dir.mkdir(parents=True, exist_ok=True)
        folder.versions_dir.mkdir(exist_ok=True)
        _write_whole(folder.session_path, json.dumps({"settings": settings.to_dict(), "created": time.time()}))
        return folder

    def exists(self) -> bool:
        return self.session_path.exists()

    def settings(self) -> LiveSettings:
        try:
            return LiveSettings.from_dict(json.loads(self.session_path.read_text())["settings"])
        except FileNotFoundError:
            raise UserError(f"no live session {self.name}") from None

    # -- labels ------------------------------------------------------------------------------------------------

    def append_labels(self, rows: list[dict]) -> None:
        """Rows appended in one write, each a whole line (a reader never sees half a row)."""
        with open(self.labels_path, "a", encoding="utf-8") as out:
            out.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
            out.flush()
            os.fsync(out.fileno())

    def labels(self) -> list[dict]:
        return _jsonl(self.labels_path)

    # -- requests ----------------------------------------------------------------------------------------------

    def request(self, kind: str, **fields_) -> Path:
        self.requests_dir.mkdir(parents=True, exist_ok=True)
        path = self.requests_dir / f"{time.time_ns():020d}-{kind}.json"
        _write_whole(path, json.dumps({"kind": kind, "time": time.time(), **fields_}))
        return path

    def pending_requests(self) -> list[tuple[Path, dict]]:
        found = []
        for path in sorted(self.requests_dir.glob("*.json")):
            try:
                found.append((path, json.loads(path.read_text())))
            except (OSError, ValueError):
                continue  # removed meanwhile
        return found

    # -- the worker's side -------------------------------------------------------------------------------------

    def write_state(self, state: str, **extra) -> None:
        previous = self.state()
        _write_whole(self.state_path, json.dumps({**previous, "state": state, "updated": time.time(), **extra}))

    def state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def record_burst(self, row: dict) -> None:
        with open(self.bursts_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")

    def bursts(self) -> list[dict]:
        return _jsonl(self.bursts_path)

    def version_dir(self, number: int) -> Path:
        return self.versions_dir / f"v{number}"

    def version_numbers(self) -> list[int]:
        """Kept versions, oldest first (a folder is only there whole: it is written under another name first)."""
        return sorted(
            int(p.name[1:]) for p in self.versions_dir.glob("v*") if p.name[1:].isdigit() and (p / "card.json").exists()
        )

    def card(self, number: int) -> dict:
        return json.loads((self.version_dir(number) / "card.json").read_text())

    def learned(self, number: int) -> list[str]:
        return json.loads((self.version_dir(number) / "learned.json").read_text())
