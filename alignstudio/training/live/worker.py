"""The live trainer: `python -m alignstudio.training.live.worker FOLDER [--workspace WS]`.

A long-lived process: it loads the policy once (`LiveEngine`), then watches the folder's requests/ and answers
them in order (rollback, burst, stop) until asked to stop; pending burst requests are one burst (the labels are
read when it starts). Its state goes to state.json; its output to the folder's log.txt (the service starts it
like the training worker: lower priority, the app's path policy in its environment).

It never outlives the process that started it (the app or `alignstudio live`): it runs in its own session, so
the parent's death sends it no signal; instead it checks that its parent is still the one it started with while
idle, between bursts and at every training step, and stops (state `stopped`, the reason in `error`) once it is
not. A burst cut short that way is dropped; the kept versions are on disk and `resume` continues from them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

from ...core import access
from ...core.errors import UserError
from ...core.registry import ModelRegistry
from ...core.store import Store
from ...core.workspace import Workspace
from .folder import BURST, FAILED, READY, ROLLBACK, STOP, STOPPED, TRAINING, LiveFolder

POLL_S = 0.3
ORPHANED = "the process that started the trainer exited: the trainer stopped with it"


class ParentGone(BaseException):
    """The parent exited. A BaseException, so a burst's error handling (`except Exception`) does not record it as
    a failed burst and carry on: it ends the worker."""


class ParentWatch:
    """Whether the process that started this one is still there: a dead parent's children are re-parented (to
    init or a subreaper), so `os.getppid()` changes. Started by init itself (ppid 1): nothing to watch."""

    def __init__(self, parent: int | None = None):
        self.parent = os.getppid() if parent is None else parent

    def gone(self) -> bool:
        return self.parent > 1 and os.getppid() != self.parent

    def check(self) -> None:
        if self.gone():
            raise ParentGone(ORPHANED)

    def callback(self):
        """A TrainerCallback that checks at every training step (a burst lasts minutes on a real model)."""
        from transformers import TrainerCallback

        watch = self

        class ParentCallback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                watch.check()

        return ParentCallback()


def _quiet() -> None:
    """The log is read line by line: no progress-bar redraws from datasets, TRL or transformers."""
    import datasets
    import transformers

    os.environ["TQDM_DISABLE"] = "1"
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def serve(folder: LiveFolder, engine, share=None, poll: float = POLL_S, watch: ParentWatch | None = None) -> None:
    """Answer the folder's requests until a stop request (the loop of the worker process); ParentGone once the
    parent has exited (`watch`)."""
    callbacks = [watch.callback()] if watch is not None else []
    if share is not None:
        from ..metrics import ShareCallback

        callbacks.append(ShareCallback(share))
    folder.write_state(READY, current=engine.current)
    while True:
        if watch is not None:
            watch.check()
        requests = folder.pending_requests()
        if not requests:
            time.sleep(poll)
            continue
        done = []
        for path, request in requests:
            if request["kind"] == STOP:
                for p in [*done, path]:
                    p.unlink(missing_ok=True)
                return
            if request["kind"] == ROLLBACK:
                try:
                    engine.rollback(int(request["version"]))
                    print(f"rolled back to v{engine.current}", flush=True)
                except UserError as exc:
                    print(f"rollback refused: {exc}", flush=True)
                folder.write_state(READY, current=engine.current)
            done.append(path)
        if any(r["kind"] == BURST for _, r in requests):
            folder.write_state(TRAINING, current=engine.current)
            engine.burst(callbacks)
            if share is not None:
                share.worker_done()
            folder.write_state(READY, current=engine.current, bursts=len(folder.bursts()))
        for path in done:  # answered: the service's wait sees the queue empty only after the state is written
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alignstudio.training.live.worker", description=__doc__)
    parser.add_argument("folder", help="the live session folder (workspace/live/NAME)")
    parser.add_argument("--workspace", default=None, help="workspace of the store and model cache")
    args = parser.parse_args(argv)
    folder = LiveFolder(Path(args.folder))
    if not folder.exists():
        print(f"error: no live session in {folder.path}", file=sys.stderr)
        return 2
    watch = ParentWatch()  # before anything slow: the parent may die while the model loads
    folder.write_state("loading", pid=os.getpid(), error=None)
    try:
        _quiet()
        from ...core.cpu_share import CpuShare
        from .engine import LiveEngine

        workspace = Workspace.open(args.workspace)
        store = Store(workspace.db_path)
        access.configure_from_environment()  # the folders the app allows, handed over by the service
        with access.acting_as(access.SERVER):  # its settings came from the app: its paths obey the app's policy
            engine = LiveEngine(folder, ModelRegistry(workspace, store))
            engine.load()
            print(f"live session {folder.name}: {engine.base} + LoRA, at v{engine.current}", flush=True)
            watch.check()
            serve(folder, engine, CpuShare(workspace.root), watch=watch)
    except ParentGone as exc:
        folder.write_state(STOPPED, error=str(exc))
        print(f"live session {folder.name}: {exc}", flush=True)
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure is reported in state.json
        print(traceback.format_exc(), file=sys.stderr, flush=True)
        text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, UserError) else str(exc)
        folder.write_state(FAILED, error=text.strip().splitlines()[0][:500] if text.strip() else type(exc).__name__)
        return 1
    folder.write_state(STOPPED)
    print(f"live session {folder.name}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
