"""The training worker: `python -m alignstudio.training.worker RUN_DIR [--workspace WS]`.

Runs one run folder to the end with TRL's trainers (built by `trainer_setup`) and reports through the folder:
status.json transitions, metrics.jsonl lines, checkpoints, the final model (`model/`, standard PEFT or Hugging
Face format, written by `outputs`) and card.json; on success the model is registered in the store. The same
module runs under `accelerate launch` (several GPUs, DeepSpeed ZeRO-3): every process trains, only the main
process writes. This module holds the run's order of steps and its outcome; it never reimplements a loss.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import access
from ..core.errors import UserError
from ..core.registry import ModelRegistry
from ..core.store import Store
from ..core.workspace import Workspace
from .card import build_card, trainer_config, write_card
from .diagnostics import diagnose_spec
from .method import Method, method_for, shares_cpu_with_app
from .model_card import write_model_card
from .outputs import (
    _trainable,
    base_model_entry,
    best_step,
    checkpoint_is_final,
    model_from_checkpoint,
    register,
    save_final_model,
    start_metrics,
)
from .run_folder import CANCELLED, ERROR_TAIL_LINES, FAILED, QUEUED, RUNNING, SUCCEEDED, RunFolder
from .schedule import Schedule, choose
from .spec import RunSpec
from .split import Split
from .trackers import apply_environment
from .trainer_setup import Loaded, is_main_process, run_callbacks, world_size

if TYPE_CHECKING:  # annotations only: metrics imports transformers, loaded once training starts
    from .data import TrainingData
    from .metrics import ControlCallback, MetricsCallback


@dataclass
class Session:
    """One run between setup and its end: what the outcome and the card are made of."""

    run: RunFolder
    spec: RunSpec
    main: bool
    started: float
    data: TrainingData
    split: Split
    train_set: object  # a datasets.Dataset
    schedule: Schedule
    loaded: Loaded
    trainer: object  # the TRL trainer
    metrics_cb: MetricsCallback
    control_cb: ControlCallback
    checkpoint: Path | None
    method: Method
    card_extra: dict = field(default_factory=dict)  # what the method adds to the run card (a reward run's measures)
    drift_cb: object | None = None  # drift.DriftCallback where the run has a drift budget
    store: Store | None = None  # the workspace's store (registered models, e.g. a reward model for this data)


def _attach_trainer(
    method: Method,
    run: RunFolder,
    spec: RunSpec,
    main: bool,
    args,
    loaded: Loaded,
    train_set,
    eval_set,
    heldout: bool,
    workspace: Workspace,
):
    """(trainer, metrics, control and drift callbacks): the trainer with our callbacks reporting into the run (the
    drift callback is None without a drift budget)."""
    from transformers.trainer_callback import PrinterCallback

    from ..core.cpu_share import CpuShare
    from .drift import DriftCallback, drift_on
    from .metrics import ControlCallback, MetricsCallback, ShareCallback

    metrics_cb = MetricsCallback(run.metrics_path, world_size=world_size(), is_main=main)
    control_cb = ControlCallback(run.cancel_path)

    def on_row(row):
        if main:
            run.update(step=row["step"], max_steps=row.get("max_steps"), eta_s=row.get("eta_s"))

    metrics_cb.on_row = on_row
    sharing = [ShareCallback(CpuShare(workspace.root))] if method.shares_cpu and shares_cpu_with_app() else []
    metrics_cb.share = sharing[0] if sharing else None  # each metrics line says how many cores it trained on
    drift_cb = None
    if drift_on(spec, heldout):  # before the metrics callback, which writes the drift it adds to held-out rows
        drift_cb = DriftCallback(run.path, spec.drift_fraction, spec.patience, loaded.tokenizer, main)
    callbacks = run_callbacks(spec, heldout, *([drift_cb] if drift_cb else []), metrics_cb, control_cb, *sharing)
    apply_environment(spec.report_to, run.path, run.name)
    trainer = method.trainer(spec, args, loaded, train_set, eval_set, callbacks, workspace, metrics_cb)
    trainer.remove_callback(PrinterCallback)  # our callback prints one readable line per step instead
    return trainer, metrics_cb, control_cb, drift_cb


def prepare(run: RunFolder, workspace: Workspace, store: Store, started: float) -> Session:
    """Data, schedule, config, model and trainer, in the order DeepSpeed needs (config before the model)."""
    main = is_main_process()
    spec = run.spec()
    method = method_for(spec)
    print(f"run {run.name}: {spec.label} on {spec.model} with {spec.data}", flush=True)
    data, split, train_set, eval_set = method.data(spec)
    schedule = choose(spec, len(train_set), world_size())
    print(f"schedule: {schedule.summary()}", flush=True)
    registry = ModelRegistry(workspace, store)
    args = method.config(spec, run, schedule, split.active)
    loaded = method.load(spec, registry)
    checkpoint = start_metrics(run, main)
    trainer, metrics_cb, control_cb, drift_cb = _attach_trainer(
        method, run, spec, main, args, loaded, train_set, eval_set, split.active, workspace
    )
    if main:
        run.update(max_steps=trainer.args.max_steps if trainer.args.max_steps > 0 else None)
    return Session(
        run,
        spec,
        main,
        started,
        data,
        split,
        train_set,
        schedule,
        loaded,
        trainer,
        metrics_cb,
        control_cb,
        checkpoint,
        method,
        method.card_start(split),
        drift_cb,
        store,
    )


def finish(s: Session, state: str, error: str | None = None, **extra) -> dict:
    """The final status fields; the main process writes the run card (and the model card with a model)."""
    import torch

    run, spec, split, data, trainer = s.run, s.spec, s.split, s.data, s.trainer
    rows = run.all_metrics()
    diagnostics, verdict = s.method.judge(s, rows, state, extra)
    extra.pop("diverged", None)
    if verdict is not None:
        extra["verdict"] = verdict.headline
    before_after = extra.pop("before_after", None)
    if s.main:
        card = build_card(
            run_name=run.name,
            state=state,
            spec=spec.to_dict(),
            base_model=base_model_entry(s.loaded),
            dataset={
                "source": data.source,
                "fingerprint": data.fingerprint,
                "rows": data.rows,
                "kind": data.kind,
                "label_sources": data.label_sources,
                "training_rows": len(s.train_set),
                "heldout": split.to_dict(),
            },
            schedule=s.schedule.to_dict(),
            verdict=verdict.to_dict() if verdict else None,
            before_after=before_after,
            trainer_args=trainer_config(trainer.args),
            started=s.started,
            final_metrics=s.metrics_cb.last or (rows[-1] if rows else {}),
            summary=s.metrics_cb.summary,
            diagnostics=diagnostics,
            error=error,
            model_dir=extra.get("model_dir"),
            registered_as=extra.get("registered_as"),
            trainable=_trainable(trainer.model),
            device=("cuda:" + torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu",
            processes=world_size(),
            resumed_from=s.checkpoint.name if s.checkpoint else None,
        )
        card.update(s.card_extra)
        write_card(run.card_path, card)
        if extra.get("model_dir"):
            write_model_card(extra["model_dir"], card)
    return {"state": state, "error": error, **extra}


def train(run: RunFolder, workspace: Workspace, store: Store) -> dict:
    """Train the run to the end; returns the fields of its final status (state, error, ...). A worker the app
    started checks its spec's files against the app's path policy before opening any (the data here, the base
    model where the registry resolves it), so a spec.json written by hand cannot reach past it either."""
    access.check_typed_path(run.spec().data)
    s = prepare(run, workspace, store, started=time.time())
    if run.cancel_requested():
        return finish(s, CANCELLED)
    checkpoint = s.checkpoint
    if checkpoint is not None and checkpoint_is_final(checkpoint):
        print(f"{checkpoint.name} is the final step: saving the model from it", flush=True)
        model_dir = model_from_checkpoint(checkpoint, s.loaded, run) if s.main else run.model_dir
        return _succeed(s, store, model_dir, step=int(checkpoint.name.split("-")[-1]), trained=False)
    s.trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    return _outcome(s, store)


def _outcome(s: Session, store: Store) -> dict:
    """After `trainer.train`: diverged, cancelled, or a model saved, measured and registered."""
    run, trainer, metrics_cb, control_cb = s.run, s.trainer, s.metrics_cb, s.control_cb
    step = trainer.state.global_step
    if metrics_cb.nan_at is not None:
        bad = sorted(set(metrics_cb.nan_keys), key=lambda k: (k != "loss", k != "grad_norm", k))
        keys = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
        return finish(
            s,
            FAILED,
            f"training diverged: {keys} became NaN at step {metrics_cb.nan_at}; the run was "
            "stopped (lower the learning rate, use fp32/bf16)",
            step=step,
            diverged=True,
        )
    if control_cb.cancelled_at is not None and step < trainer.state.max_steps:
        return finish(s, CANCELLED, step=step, checkpoint=str(run.last_checkpoint() or "") or None)
    best = best_step(trainer)
    stopped_early = (
        step if (s.split.active and step < trainer.state.max_steps and control_cb.cancelled_at is None) else None
    )
    drift = {"stopped_on_drift_at": s.drift_cb.stopped_at} if s.drift_cb and s.drift_cb.stopped_at else {}
    if best is not None:
        print(
            f"kept the checkpoint of step {best} (best held-out loss "
            f"{trainer.state.best_metric:.4f}{' within the drift budget' if s.drift_cb else ''})"
            + (f"; {'drift' if drift else 'early'} stopping at step {stopped_early}" if stopped_early else ""),
            flush=True,
        )
    model_dir = save_final_model(trainer, s.loaded, run)
    return _succeed(
        s, store, model_dir, step=step, trained=True, best_step=best, stopped_early_at=stopped_early, **drift
    )


def _succeed(s: Session, store: Store, model_dir: Path, *, step: int, trained: bool, **extra) -> dict:
    """The saved model measured by its method, registered, and the run finished as succeeded (main process)."""
    registered = None
    if s.main:
        extra.update(s.method.measure(s, Path(model_dir), trained))
        registered = register(store, s.run, s.spec, s.loaded, kind=s.method.registry_kind)
        print(f"saved {model_dir}, registered as {registered}", flush=True)
    return finish(s, SUCCEEDED, step=step, model_dir=str(model_dir), registered_as=registered, **extra)


def write_failure_card(run: RunFolder, error: str, started: float) -> None:
    """A card for a run that failed before (or outside) the trainer's own reporting."""
    try:
        spec = run.spec()
        rows = run.metrics()
        diagnostics = [d.to_dict() for d in diagnose_spec(rows, spec)]
        write_card(
            run.card_path,
            build_card(
                run_name=run.name,
                state=FAILED,
                spec=spec.to_dict(),
                base_model={"name": spec.model},
                dataset=None,
                trainer_args=None,
                started=started,
                final_metrics=rows[-1] if rows else {},
                diagnostics=diagnostics,
                processes=world_size(),
                error=error,
            ),
        )
    except Exception as exc:  # the status still says what happened
        print(f"could not write the run card: {exc}", file=sys.stderr)


def quiet_progress_bars() -> None:
    """The run's log is read line by line (the Train tab, `alignstudio train`): no progress-bar redraws from TRL's
    reference pass (it reads TQDM_DISABLE), datasets' maps or transformers' saving; the metrics lines stay."""
    import datasets
    import transformers

    os.environ["TQDM_DISABLE"] = "1"
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m alignstudio.training.worker", description="Run one AlignStudio training run folder to the end."
    )
    parser.add_argument("run_dir", help="the run folder (spec.json, status.json)")
    parser.add_argument("--workspace", default=None, help="workspace of the store and model cache")
    args = parser.parse_args(argv)
    run = RunFolder(args.run_dir)
    main_proc = is_main_process()
    try:
        status = run.status()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if main_proc:
        if status["state"] == QUEUED:
            run.transition(RUNNING, expect=QUEUED, note="worker started by hand", pid=os.getpid())
        elif status["state"] == RUNNING:
            run.update(worker_pid=os.getpid())
        else:
            print(f"error: run {run.name} is {status['state']}; resume it to run it again", file=sys.stderr)
            return 2
    outcome: dict
    started = time.time()
    try:
        quiet_progress_bars()
        workspace = Workspace.open(args.workspace)
        store = Store(workspace.db_path)
        access.configure_from_environment()  # the folders the app allows, handed over by run_launch.start_worker
        with access.acting_as(access.SERVER):  # its spec came from the app: its paths obey the app's policy
            outcome = train(run, workspace, store)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        outcome = {"state": FAILED, "error": str(exc)}
    except BaseException as exc:  # noqa: BLE001 - every failure is reported in status.json
        trace = traceback.format_exc()
        print(trace, file=sys.stderr, flush=True)
        first = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:500] if str(exc) else type(exc).__name__
        lines = [ln for ln in trace.strip().splitlines() if ln.strip()]
        outcome = {"state": FAILED, "error": first, "error_tail": "\n".join(lines[-ERROR_TAIL_LINES:])}
    if main_proc:
        state = outcome.pop("state")
        card = run.card() or {}
        if state == FAILED and not (card.get("state") == FAILED and card.get("started", 0) >= started):
            write_failure_card(run, outcome.get("error") or "failed", started)
        try:
            run.transition(state, expect=RUNNING, note="worker finished", **outcome)
        except UserError as exc:
            print(f"could not record the outcome: {exc}", file=sys.stderr)
            return 1
        print(f"run {run.name}: {state}" + (f" - {outcome['error']}" if outcome.get("error") else ""), flush=True)
        return 0 if state in (SUCCEEDED, CANCELLED) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
