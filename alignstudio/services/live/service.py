"""The live session service (issue 37): a LoRA policy trained in bursts while labels arrive, and its pairs.

`LiveService` is the one door the CLI (and later the app) has onto live mode: start and stop a session's
long-lived trainer (`python -m alignstudio.training.live.worker`, started like the training worker: its own
session, lower priority, output to the folder's log.txt, the app's path policy in its environment), add labels
(a burst is requested every K new labels, or on demand), list the kept versions, roll back, read the status, and
sample the next pairs from the newest version (`sample_pairs`), each generation stored with the version it came
from. Admins start, stop, burst and roll back; anyone who may label adds labels and samples. Knows no torch: the
folder (`training.live.folder`) is how it talks to the trainer.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ...core import access
from ...core.errors import UserError
from ...core.store import Store
from ...core.store_file import new_id
from ...core.workspace import Workspace
from ...training.live.folder import (
    AGAINST_BASE,
    BURST,
    FAILED,
    READY,
    ROLLBACK,
    STOP,
    STOPPED,
    LiveFolder,
    LiveSettings,
    check_name,
    split_labels,
    version_name,
)
from ...training.run_launch import start_logged
from ..data.snapshots import dpo_row
from ..sampling.generators import GeneratorPool
from ..sampling.prefetch import FeedManager
from ..sampling.sampler import sample_pairs
from ..sampling.settings import SamplingSettings
from .campaigns import LiveCampaigns

WORKER_MODULE = "alignstudio.training.live.worker"


@dataclass(frozen=True)
class LiveLabel:
    """One decisive label for the live policy: the prompt's messages, the preferred and the other answer."""

    messages: list[dict]
    chosen: str
    rejected: str
    pair_id: str = ""  # the stored pair it labels, when there is one
    annotator: str = ""  # who gave it (default: the caller)


@dataclass(frozen=True)
class LiveVersion:
    number: int
    name: str  # its registry name, recorded with every generation sampled from it
    labels_learned: int
    heldout_loss: float | None
    heldout_accuracy: float | None
    time: float
    current: bool


@dataclass(frozen=True)
class LiveStatus:
    name: str
    state: str  # loading | ready | training | stopped | failed | (not started)
    model: str
    current: int | None  # the version the policy is at now
    versions: int
    labels: int
    heldout_labels: int
    labels_learned: int  # by the current version
    bursts: int
    heldout_accuracy: float | None  # the current version's
    last_burst_finished: float | None
    pending_requests: int
    error: str | None = None

    @property
    def idle(self) -> bool:
        return self.pending_requests == 0 and self.state in (READY, STOPPED, FAILED)


@dataclass(frozen=True)
class LivePair:
    pair_id: str
    messages: list[dict]
    text_a: str
    text_b: str
    model_a: str
    model_b: str
    version: int  # the live version the policy side(s) came from


@dataclass
class LiveService(LiveCampaigns):
    workspace: Workspace
    store: Store
    generators: GeneratorPool
    command: list[str] | None = None  # the worker's command before FOLDER (tests may inject one)
    feeds: FeedManager | None = None  # the app's prefetch feeds, for the Label tab's live pairs (campaigns.py)
    _procs: dict = field(default_factory=dict)
    _loaded: dict = field(default_factory=dict)  # session -> version name loaded in the pool (released on change)
    _labels_lock: threading.Lock = field(default_factory=threading.Lock)  # count and append as one step
    _serving: dict = field(default_factory=dict)  # session -> the Label tab's live FeedConfig handed out now
    _serving_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def root(self):
        return self.workspace.root / "live"

    def folder(self, name: str) -> LiveFolder:
        folder = LiveFolder(self.root / check_name(name))
        if not folder.exists():
            raise UserError(f"no live session {name!r}: start one first")
        return folder

    def names(self) -> list[str]:
        return sorted(p.parent.name for p in self.root.glob("*/session.json"))

    # -- the trainer process -----------------------------------------------------------------------------------

    def start(self, name: str, settings: LiveSettings) -> LiveStatus:
        """A new session's folder and its trainer, started now (it loads the model and saves v0 in the
        background: `wait` for it)."""
        access.require_admin("live sessions")
        name = check_name(name)
        settings = settings.check()
        ref = self.generators.registry.resolve(settings.model)  # the path policy, and "unknown model" at once
        if ref.is_adapter:
            raise UserError(f"model {ref.name} is a LoRA adapter: merge it first and start from the merged checkpoint")
        folder = LiveFolder.create(self.root / name, settings)
        self._launch(folder)
        return self.status(name)

    def resume(self, name: str) -> LiveStatus:
        """Start a stopped (or failed) session's trainer again: it continues from the version it was at."""
        access.require_admin("live sessions")
        folder = self.folder(name)
        if self._alive(folder):
            raise UserError(f"live session {name} is running already")
        self._launch(folder)
        return self.status(name)

    def _launch(self, folder: LiveFolder) -> None:
        command = [*(self.command or [sys.executable, "-m", WORKER_MODULE]), str(folder.path)]
        command += ["--workspace", str(self.workspace.root)]
        proc = start_logged(command, folder.log_path)  # as a training run's worker: a click never waits behind a burst
        self._procs[folder.name] = proc
        folder.write_state("loading", pid=proc.pid, error=None)

    def _alive(self, folder: LiveFolder) -> bool:
        proc = self._procs.get(folder.name)
        if proc is not None:
            return proc.poll() is None
        pid = folder.state().get("pid")
        if not pid:
            return False
        try:
            os.kill(int(pid), 0)
        except (OSError, ValueError):
            return False
        return True

    def stop(self, name: str, timeout: float = 120.0) -> LiveStatus:
        """Ask the trainer to stop after the burst it is in, and wait for it (killed after `timeout`)."""
        access.require_admin("live sessions")
        folder = self.folder(name)
        if self._alive(folder):
            folder.request(STOP)
            proc = self._procs.pop(folder.name, None)
            if proc is not None:
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    folder.write_state(STOPPED, error=f"did not stop within {timeout:g} s: killed")
        return self.status(name)

    def close(self) -> None:
        """Stop every trainer this service started (the app or a command is ending)."""
        for name in list(self._procs):
            with contextlib.suppress(UserError), access.acting_as(access.SERVER):
                self.stop(name)

    # -- labels, bursts, versions ------------------------------------------------------------------------------

    def add_labels(self, name: str, labels: list[LiveLabel]) -> LiveStatus:
        """Append decisive labels; a burst is requested each time the count passes a multiple of K."""
        folder = self.folder(name)
        every = folder.settings().every
        rows = []
        for i, label in enumerate(labels):
            if not label.messages or not str(label.chosen).strip() or not str(label.rejected).strip():
                raise UserError(f"label {i + 1}: the prompt and both answers must be non-empty")
            caller = access.current()
            row = dpo_row(label.messages, label.chosen, label.rejected)
            rows.append(
                {
                    "id": new_id(),
                    **row,
                    "pair_id": label.pair_id,
                    "annotator": label.annotator or (caller.name if caller else ""),
                    "time": time.time(),
                }
            )
        with self._labels_lock:  # two labelers at once: each multiple of K requests exactly one burst
            before = len(folder.labels())
            folder.append_labels(rows)
            if (before + len(rows)) // every > before // every:
                folder.request(BURST, labels=before + len(rows))
        return self.status(name)

    def burst(self, name: str) -> LiveStatus:
        """A burst now, on the labels no kept version has learned yet."""
        access.require_admin("live bursts")
        folder = self.folder(name)
        folder.request(BURST, labels=len(folder.labels()), on_demand=True)
        return self.status(name)

    def rollback(self, name: str, version: int) -> LiveStatus:
        """The policy goes back to version `version`'s exact weights (later bursts train from there)."""
        access.require_admin("live rollback")
        folder = self.folder(name)
        if version not in folder.version_numbers():
            raise UserError(f"version: live session {name} has no version v{version} (it has {self._listing(folder)})")
        folder.request(ROLLBACK, version=int(version))
        return self.status(name)

    @staticmethod
    def _listing(folder: LiveFolder) -> str:
        return ", ".join(f"v{n}" for n in folder.version_numbers()) or "none yet"

    def versions(self, name: str) -> list[LiveVersion]:
        folder = self.folder(name)
        current = folder.state().get("current")
        found = []
        for number in folder.version_numbers():
            card = folder.card(number)
            heldout = card.get("heldout") or {}
            found.append(
                LiveVersion(
                    number,
                    card["name"],
                    card["labels_learned"],
                    heldout.get("loss"),
                    heldout.get("accuracy"),
                    card["time"],
                    number == current,
                )
            )
        return found

    def bursts(self, name: str) -> list[dict]:
        """Every burst's record (kept, discarded or skipped, with its held-out figures and training losses)."""
        return self.folder(name).bursts()

    def status(self, name: str) -> LiveStatus:
        folder = self.folder(name)
        settings, state, labels = folder.settings(), folder.state(), folder.labels()
        current = state.get("current")
        card = folder.card(current) if current is not None and current in folder.version_numbers() else {}
        bursts = folder.bursts()
        phase = state.get("state", "(not started)")
        if phase not in (STOPPED, FAILED) and state.get("pid") and not self._alive(folder):
            phase, state = FAILED, {**state, "error": state.get("error") or "the trainer exited (see log.txt)"}
        return LiveStatus(
            folder.name,
            phase,
            settings.model,
            current,
            len(folder.version_numbers()),
            len(labels),
            len(split_labels(labels, settings.heldout_fraction)[1]),
            card.get("labels_learned", 0),
            len(bursts),
            (card.get("heldout") or {}).get("accuracy"),
            bursts[-1]["finished"] if bursts else None,
            len(folder.pending_requests()),
            state.get("error"),
        )

    def wait(self, name: str, timeout: float = 600.0, poll: float = 0.2) -> LiveStatus:
        """Until the trainer has answered every request (or stopped, or failed); UserError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(name)
            if status.state == FAILED:
                raise UserError(f"live session {name} failed: {status.error}")
            if status.idle:
                return status
            if time.monotonic() > deadline:
                raise UserError(f"live session {name}: still {status.state} after {timeout:g} s")
            time.sleep(poll)

    # -- on-policy pairs ---------------------------------------------------------------------------------------

    def sample_pairs(
        self, name: str, prompts: list[list[dict]], sampling: SamplingSettings | None = None
    ) -> list[LivePair | None]:
        """The next pairs, drawn from the newest version (both answers, or one against the base: the session's
        `pairs` setting), stored unlabeled with each generation's model name = its version."""
        folder = self.folder(name)
        settings = folder.settings()
        current = folder.state().get("current")
        if current is None:
            raise UserError(f"live session {name} has no version yet: wait until its trainer is ready")
        policy = version_name(folder.name, current)
        previous = self._loaded.get(folder.name)
        if previous and previous != policy:
            self.generators.release(previous)  # a new version landed: the old one leaves memory
        self._loaded[folder.name] = policy
        gen_a = self.generators.get(policy)
        gen_b = self.generators.get(settings.model) if settings.pairs == AGAINST_BASE else None
        found: list[LivePair | None] = []
        for pair in sample_pairs(prompts, sampling or SamplingSettings(), gen_a, gen_b, prompt_set=f"live:{name}"):
            if pair is None:
                found.append(None)
                continue
            pair_id = self.store.add_pair(
                pair.messages,
                pair.text_a,
                pair.text_b,
                model_a=pair.model_a,
                model_b=pair.model_b,
                params_a={**pair.params_a, "live_version": current},
                params_b={**pair.params_b, "live_version": current if gen_b is None else None},
                prompt_set=f"live:{name}",
                origin="live",
            )
            found.append(
                LivePair(pair_id, pair.messages, pair.text_a, pair.text_b, pair.model_a, pair.model_b, current)
            )
        return found
