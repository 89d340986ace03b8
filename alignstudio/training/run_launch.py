"""Starting one training worker process for a run folder, and following it in the foreground.

The worker (`python -m alignstudio.training.worker RUN_DIR --workspace WS`, or an injected command) runs in its
own session at a lower priority, with its output appended to the run's log.txt and the app's path policy
handed over in its environment. `run_queue.RunManager` decides when a worker starts; this module only starts it
(`start_worker`) and, for `alignstudio train` without --background, follows it (`follow`: progress as metrics
lines arrive, Ctrl-C as a graceful cancel). It never imports torch or TRL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ..core import access
from ..core.cpu_share import lower_priority, worker_env
from .run_folder import RunFolder


def repo_root() -> Path:
    """The folder that contains the `alignstudio` package, so `python -m alignstudio...` resolves."""
    return Path(__file__).resolve().parents[2]


def worker_environment() -> dict:
    """The worker's environment: the app's, with idle OpenMP threads asleep (core.cpu_share), the folders the
    app allows (the worker checks its spec's paths the same way), and `alignstudio` importable."""
    env = worker_env(dict(os.environ))
    env.pop(access.PATH_ROOTS_ENV, None)
    env.update(access.roots_environment())
    env.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    root = str(repo_root())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def start_worker(run: RunFolder, command: list[str]) -> subprocess.Popen:
    """The worker process for `run`, started now with its output appended to the run's log (OSError if not)."""
    return start_logged(command, run.log_path)


def start_logged(command: list[str], log_path) -> subprocess.Popen:
    """A worker process (a training run's, a live session's trainer) in its own session, at lower priority, with
    the allowed folders in its environment and its output appended to `log_path`, never to a pipe."""
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} launch: {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(repo_root()),
            env=worker_environment(),
            start_new_session=True,
        )
    lower_priority(proc.pid)  # a click in the app never waits behind a training step
    return proc


def follow(run: RunFolder, proc: subprocess.Popen, on_progress=None, poll: float = 0.5) -> None:
    """Until the worker exits, call `on_progress(rows)` with new metrics rows (training lines, then held-out
    evaluations). Ctrl-C asks the worker to stop gracefully (cancel flag); a second Ctrl-C terminates it."""
    seen = {"metrics": 0, "heldout": 0}
    cancelled = False
    while True:
        try:
            done = proc.poll() is not None
            for stream in seen:
                rows = getattr(run, stream)()
                if on_progress and len(rows) > seen[stream]:
                    on_progress(rows[seen[stream] :])
                    seen[stream] = len(rows)
            if done:
                return
            time.sleep(poll)
        except KeyboardInterrupt:
            if cancelled:
                proc.terminate()
                continue
            cancelled = True
            run.cancel_path.write_text(str(time.time()))
            print(
                "\ncancelling: the run stops at the next step and saves a checkpoint (Ctrl-C again to kill it)",
                file=sys.stderr,
                flush=True,
            )
