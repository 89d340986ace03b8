"""How the app and a training worker share one machine's cores: by plan, not by contention.

Two torch processes that each run an OpenMP thread per core on the same cores starve each other: their
threads busy-wait at every barrier while the other process holds the core, and training ran 10-25x slower
beside a labeling session. The plan, for a workspace (the app and its workers share one):
  * while a worker trains, the app decodes on one thread, and the worker trains on the other cores while the
    app is sampling (all of them when it is not): each process owns whole cores, nobody spins on a shared one;
  * the worker's idle OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE), and it runs at a
    lower priority, so a click in the app never waits behind a training step.
Each side announces itself with a small flag file in the workspace: `.app-sampling` exists while the app
decodes; `.worker-training` is touched at every training step. ALIGNSTUDIO_SHARING=off turns the plan off
(benchmarks measure the difference).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

SHARING_ENV = "ALIGNSTUDIO_SHARING"
WORKER_NICE = 5  # the worker's priority below the app's
WORKER_STALE_S = 60.0  # a worker that has not stepped for this long is gone
APP_STALE_S = 300.0  # an app flag older than this was left by a crash


def enabled() -> bool:
    return os.environ.get(SHARING_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def worker_env(env: dict) -> dict:
    """The environment a training worker starts with (OpenMP reads it once, at start)."""
    if enabled():
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def lower_priority(pid: int) -> None:
    """Run a started worker below the app's priority (best effort: not every system allows it)."""
    if enabled():
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, pid, WORKER_NICE)


def _fresh(path: Path, within: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < within
    except OSError:
        return False


class CpuShare:
    """One workspace's side of the plan; `cores` is what torch would use alone."""

    def __init__(self, root: str | Path, cores: int | None = None):
        import torch

        self.root = Path(root)
        self.app_flag = self.root / ".app-sampling"
        self.worker_flag = self.root / ".worker-training"
        self.cores = max(1, cores or torch.get_num_threads())
        self._lock = threading.Lock()
        self._decoding = 0  # the app's decoders inside `sampling` now

    def training(self) -> bool:
        """A worker of this workspace trained a step recently."""
        return enabled() and _fresh(self.worker_flag, WORKER_STALE_S)

    def app_sampling(self) -> bool:
        return enabled() and _fresh(self.app_flag, APP_STALE_S)

    @contextlib.contextmanager
    def sampling(self):
        """Around the app's decoding: one thread while a worker trains (all alone), and the flag up until the
        last of the app's decoders (the Label and Feedback feeds run side by side) is done."""
        import torch

        sharing = self.training()
        torch.set_num_threads(1 if sharing else self.cores)
        with self._lock:
            self._decoding += 1
            if sharing:
                with contextlib.suppress(OSError):
                    self.app_flag.touch()
        try:
            yield sharing
        finally:
            with self._lock:
                self._decoding -= 1
                if not self._decoding:  # the app's other work (serving pages, the store) gets every core again
                    torch.set_num_threads(self.cores)
                    with contextlib.suppress(OSError):
                        self.app_flag.unlink(missing_ok=True)

    def worker_threads(self) -> int:
        """Called by the worker before each step: marks it training; the threads to train this step with."""
        with contextlib.suppress(OSError):
            self.worker_flag.touch()
        if self.cores > 1 and self.app_sampling():
            return self.cores - 1
        return self.cores

    def worker_done(self) -> None:
        with contextlib.suppress(OSError):
            self.worker_flag.unlink(missing_ok=True)
