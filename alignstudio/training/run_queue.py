"""The training queue: `RunManager` queues, launches, watches, cancels and resumes runs, one worker at a time.

`RunManager` is a plain service (no Gradio): it launches one worker at a time
(`python -m alignstudio.training.worker RUN_DIR --workspace WS`, or an injected command), keeps a small
FIFO queue of runs in the `queued` state, and notices a worker that died without reporting (pid gone
while the status says running -> failed "interrupted"), so the app can restart and pick runs up.
A workspace-wide lock file (`runs/.queue.lock`) keeps two processes sharing a workspace from starting two
workers. What a run folder holds and which state moves are legal belong to `run_folder`; this module only
decides when they happen; starting and following one worker process is `run_launch`'s. It never imports torch
or TRL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..core import access
from ..core.errors import UserError
from ..core.locking import exclusive
from ..core.store import Store
from ..core.workspace import Workspace
from .run_folder import (
    CANCELLED,
    ERROR_TAIL_LINES,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    IllegalTransition,
    RunFolder,
    RunInfo,
    RunStatus,
    check_transition,
    finished_words,
    pid_alive,
)
from .run_launch import follow, start_worker
from .spec import SWEEP_BETAS, RunSpec

LAUNCH_GRACE_S = 60.0  # a running status without a pid this young is a launch in progress
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RunManager:
    """Queue, launch and watch training workers; one worker at a time (this machine has 2 cores).

    `command` is the worker command prefix; the run folder and `--workspace WS` are appended. Tests pass a
    stand-in script to exercise the state machine in milliseconds.
    """

    def __init__(
        self,
        workspace: Workspace,
        store: Store | None = None,
        command: list[str] | None = None,
        *,
        autostart: bool = True,
    ):
        self.workspace = workspace
        self.store = store
        self.command = list(command) if command else [sys.executable, "-m", "alignstudio.training.worker"]
        self.autostart = autostart
        self._lock = threading.RLock()
        self._procs: dict[Path, subprocess.Popen] = {}
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.refresh()

    @property
    def runs_dir(self) -> Path:
        return self.workspace.runs_dir

    # -- naming ------------------------------------------------------------------------------------
    def folder(self, name_or_path: str | Path) -> RunFolder:
        """A run by name (under runs/) or by folder path."""
        key = str(name_or_path).strip()
        if not key:
            raise UserError("no run given")
        candidate = Path(key).expanduser()
        if os.sep in key or candidate.is_absolute():
            run = RunFolder(candidate)
        else:
            run = RunFolder(self.runs_dir / key)
        if not run.exists():
            raise UserError(f"no run {key!r} (looked in {run.path})")
        return run

    def new_name(self, spec: RunSpec, prefix: str | None = None) -> str:
        base = prefix or f"{spec.method}-{time.strftime('%Y%m%d-%H%M%S')}"
        if not _NAME.match(base):
            raise UserError(f"run name {base!r}: use letters, digits, '.', '_' and '-' (at most 100)")
        name, n = base, 2
        while (self.runs_dir / name).exists():
            name, n = f"{base}-{n}", n + 1
        return name

    # -- creating and queueing -----------------------------------------------------------------------
    def create(self, spec: RunSpec, name: str | None = None, folder: str | Path | None = None) -> RunFolder:
        """Write a queued run folder (not started). `folder` puts it outside the workspace (CLI --out)."""
        if folder is not None:
            return RunFolder.create(folder, spec)
        if name is not None and (self.runs_dir / name).exists():
            raise UserError(f"a run named {name!r} already exists")
        return RunFolder.create(self.runs_dir / self.new_name(spec, name), spec)

    def start(self, spec: RunSpec, name: str | None = None) -> str:
        """Queue a run; it starts now if no other worker is busy. Returns the run name."""
        access.require_admin("training")
        run = self.create(spec, name)
        if self.autostart:
            self.pump()
        return run.name

    def sweep(self, spec: RunSpec, betas=SWEEP_BETAS, name: str | None = None) -> list[str]:
        """Queue one run per beta, identical otherwise; they run one after another."""
        access.require_admin("training")
        betas = [float(b) for b in betas]
        if not betas:
            raise UserError("a beta sweep needs at least one beta")
        if len(set(betas)) != len(betas):
            raise UserError(f"beta sweep lists a value twice: {betas}")
        specs = [spec.replace(beta=b) for b in betas]  # validates every beta before anything is written
        prefix = name or f"sweep-{spec.method}-{time.strftime('%Y%m%d-%H%M%S')}"
        names = []
        for one in specs:
            run_name = self.new_name(one, f"{prefix}-beta{one.beta:g}")
            self.create(one.replace(register_as=one.register_as and f"{one.register_as}-beta{one.beta:g}"), run_name)
            names.append(run_name)
        if self.autostart:
            self.pump()
        return names

    def cancel(self, name: str) -> RunStatus:
        """Queued: cancelled at once. Running: the worker stops at its next step, saves a checkpoint and
        reports cancelled."""
        access.require_admin("cancelling a run")
        with self._lock:
            run = self.folder(name)
            self._reconcile(run)
            state = run.state
            if state == QUEUED:
                return RunStatus.from_json(run.transition(CANCELLED, expect=QUEUED, note="cancelled before it started"))
            if state == RUNNING:
                run.cancel_path.write_text(str(time.time()))
                return RunStatus.from_json(run.update(cancel_requested=time.time()))
            raise IllegalTransition(f"run {run.name} {finished_words(state)}; nothing to cancel")

    def resume(self, name: str, *, start: bool | None = None) -> RunStatus:
        """A cancelled or failed run goes back in the queue; the worker continues from its last checkpoint.
        `start` (default: the manager's autostart) launches it when no other worker is busy."""
        access.require_admin("resuming a run")
        with self._lock:
            run = self.folder(name)
            self._reconcile(run)
            status = run.status()
            if status["state"] in (SUCCEEDED, QUEUED, RUNNING):
                why = {SUCCEEDED: "has finished", QUEUED: "is already queued", RUNNING: "is still running"}
                raise IllegalTransition(
                    f"run {run.name} {why[status['state']]}; nothing to resume"
                    + (" (start a new run to train further)" if status["state"] == SUCCEEDED else "")
                )
            check_transition(status["state"], QUEUED, f"run {run.name}")
            run.cancel_path.unlink(missing_ok=True)
            status = run.transition(
                QUEUED, note="resume", resumes=int(status.get("resumes") or 0) + 1, cancel_requested=None
            )
        if self.autostart if start is None else start:
            self.pump()
        return RunStatus.from_json(status)

    # -- reading -----------------------------------------------------------------------------------
    def list(self) -> list[RunInfo]:
        """Every run in the workspace, newest first (dead workers are noticed on the way)."""
        self.refresh()
        infos = []
        for path in sorted(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []:
            run = RunFolder(path)
            if not run.exists():
                continue
            try:
                infos.append(self._info(run))
            except (UserError, json.JSONDecodeError, KeyError):
                continue
        return sorted(infos, key=lambda i: i.created, reverse=True)

    def names(self) -> list[str]:
        return [i.name for i in self.list()]

    def status(self, name: str) -> RunStatus:
        run = self.folder(name)
        self._reconcile(run)
        return RunStatus.from_json(run.status())

    def metrics(self, name: str) -> list[dict]:
        return self.folder(name).metrics()

    def all_metrics(self, name: str) -> list[dict]:
        return self.folder(name).all_metrics()

    def log_tail(self, name: str, lines: int = 40) -> str:
        return self.folder(name).log_tail(lines)

    def card(self, name: str) -> dict | None:
        return self.folder(name).card()

    def spec(self, name: str) -> RunSpec:
        return self.folder(name).spec()

    def _info(self, run: RunFolder) -> RunInfo:
        status, spec = run.status(), run.spec()
        step = int(status.get("step") or 0)
        return RunInfo(
            run.name,
            str(run.path),
            status["state"],
            spec.method,
            spec.model,
            spec.beta,
            spec.label,
            step,
            status.get("max_steps") or spec.max_steps,
            status.get("created") or 0.0,
            status.get("error"),
        )

    def wait(self, name: str, timeout: float = 600.0, poll: float = 0.2) -> RunStatus:
        """Block until the run is finished (succeeded, failed or cancelled) or `timeout` passes."""
        deadline = time.time() + timeout
        while True:
            status = self.status(name)
            if status.state in FINISHED:
                return status
            if time.time() > deadline:
                raise TimeoutError(f"run {name} still {status.state} after {timeout:.0f} s")
            time.sleep(poll)

    # -- the worker processes ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Notice dead workers, then start the next queued run if nothing runs."""
        with self._lock:
            for path in self.runs_dir.iterdir() if self.runs_dir.is_dir() else []:
                run = RunFolder(path)
                if run.exists():
                    try:
                        self._reconcile(run)
                    except (UserError, json.JSONDecodeError, KeyError):
                        continue
        if self.autostart:
            self.pump()

    def close(self) -> None:
        """Stop the workers this manager started (tests, and a server shutting down); their runs then show as
        interrupted and can be resumed."""
        for proc in list(self._procs.values()):
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _alive(self, run: RunFolder, status: dict) -> bool:
        proc = self._procs.get(run.path)
        if proc is not None:
            return proc.poll() is None
        pid = status.get("pid")
        if not pid:
            return time.time() - float(status.get("updated") or 0) < LAUNCH_GRACE_S
        return pid_alive(int(pid), marker=run.name)

    def _reconcile(self, run: RunFolder) -> None:
        """A run that says running but has no live worker failed ("interrupted")."""
        status = run.status()
        if status["state"] != RUNNING or self._alive(run, status):
            return
        proc = self._procs.pop(run.path, None)
        code = proc.returncode if proc is not None else None
        tail = run.log_tail(ERROR_TAIL_LINES)
        how = f"exit code {code}" if code is not None else "the process is gone"
        try:
            run.transition(
                FAILED,
                expect=RUNNING,
                note="interrupted",
                error=f"interrupted: the worker stopped without reporting ({how})",
                error_tail=tail or None,
                exit_code=code,
            )
        except IllegalTransition:
            pass  # the worker reported just now

    def busy(self) -> str | None:
        """The name of the run whose worker is alive, if any."""
        for path in self.runs_dir.iterdir() if self.runs_dir.is_dir() else []:
            run = RunFolder(path)
            if not run.exists():
                continue
            try:
                status = run.status()
            except (UserError, json.JSONDecodeError):
                continue
            if status["state"] == RUNNING and self._alive(run, status):
                return run.name
        return None

    def pump(self) -> str | None:
        """Start the oldest queued run if no worker is busy. Returns the run started, if any.

        A workspace-wide lock file makes this safe when two processes (the app and a CLI) share a workspace.
        """
        with self._lock, self._workspace_lock():
            if self.busy():
                return None
            queued = []
            for path in self.runs_dir.iterdir():
                run = RunFolder(path)
                if run.exists():
                    try:
                        status = run.status()
                    except (UserError, json.JSONDecodeError):
                        continue
                    if status["state"] == QUEUED:
                        queued.append((float(status.get("queued_at") or 0), run.name, run))
            if not queued:
                return None
            run = min(queued)[2]
            self.launch(run)
            return run.name

    def _workspace_lock(self):
        return exclusive(self.runs_dir / ".queue.lock")

    def worker_command(self, run: RunFolder) -> list[str]:
        return [*self.command, str(run.path), "--workspace", str(self.workspace.root)]

    def launch(self, run: RunFolder) -> subprocess.Popen:
        """Start the worker for a queued run now (no queue check): queued -> running, output to log.txt."""
        with self._lock:
            run.transition(RUNNING, expect=QUEUED, note="launched", pid=None)
            run.cancel_path.unlink(missing_ok=True)
            try:
                proc = start_worker(run, self.worker_command(run))
            except OSError as exc:
                run.transition(FAILED, expect=RUNNING, note="launch failed", error=f"could not start the worker: {exc}")
                raise UserError(f"could not start the training worker: {exc}") from None
            self._procs[run.path] = proc
            run.update(pid=proc.pid, launched_by=os.getpid())
        threading.Thread(target=self._watch, args=(run, proc), daemon=True, name=f"watch-{run.name}").start()
        return proc

    def _watch(self, run: RunFolder, proc: subprocess.Popen) -> None:
        proc.wait()
        with self._lock:
            try:
                self._reconcile(run)
            except (UserError, json.JSONDecodeError):
                pass
            self._procs.pop(run.path, None)
        if self.autostart:
            try:
                self.pump()
            except Exception:  # the next refresh() tries again
                pass

    def run_foreground(self, run: RunFolder, on_progress=None, poll: float = 0.5) -> RunStatus:
        """Launch `run` now and wait for it, calling `on_progress(metrics_rows)` as lines arrive.
        Ctrl-C asks the worker to stop gracefully (cancel flag) and waits for it."""
        follow(run, self.launch(run), on_progress, poll)
        for _ in range(50):  # the watcher thread reconciles a dead worker; give it a moment
            if run.state != RUNNING:
                break
            time.sleep(0.1)
        with self._lock:
            self._reconcile(run)
        return RunStatus.from_json(run.status())
