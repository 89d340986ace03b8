"""Experiment trackers a run reports to: TensorBoard, Weights & Biases, MLflow, Trackio.

Owns the tracker names, the package each needs (checked when a spec is made, so a missing one is one clear
error before a worker starts), and where each writes inside the run folder. The reporting itself is
transformers' own callbacks (`report_to`); keys come from the environment only (WANDB_API_KEY, MLflow's
tracking URI credentials, HF_TOKEN for Trackio spaces) and are never written by us.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..core.errors import UserError

# name -> (import name, pip package): tensorboard is in requirements.txt; the others are large or pull their
# own servers, so they are extras the user installs
TRACKERS = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow"),
    "trackio": ("trackio", "trackio"),
}
TENSORBOARD_DIR = "tensorboard"


def check_trackers(names) -> list[str]:
    """The tracker list normalized ('none' and empty mean none); an unknown or uninstalled one is a UserError."""
    chosen = [str(n).strip().lower() for n in (names or []) if str(n).strip()]
    if "none" in chosen:
        if len(chosen) > 1:
            raise UserError("report_to: 'none' cannot be combined with a tracker")
        return []
    unknown = [n for n in chosen if n not in TRACKERS]
    if unknown:
        raise UserError(f"report_to: unknown tracker {unknown[0]!r}; choose from none, {', '.join(TRACKERS)}")
    for name in chosen:
        module, package = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise UserError(f"report_to {name} needs the {package} package: pip install {package}")
    return list(dict.fromkeys(chosen))


def tracker_environment(names: list[str], run_dir: Path, run_name: str) -> dict[str, str]:
    """Environment for the worker so that each tracker writes inside the run folder (or offline) unless the
    user already pointed it elsewhere."""
    run_dir = Path(run_dir).resolve()
    env: dict[str, str] = {}
    if "tensorboard" in names:
        env["TENSORBOARD_LOGGING_DIR"] = str(run_dir / TENSORBOARD_DIR)
    if "wandb" in names:
        env["WANDB_DIR"] = str(run_dir)
        env["WANDB_NAME"] = run_name
        if not os.environ.get("WANDB_API_KEY"):
            env["WANDB_MODE"] = "offline"  # no key: log locally, `wandb sync` uploads later
    if "mlflow" in names and "MLFLOW_TRACKING_URI" not in os.environ:
        env["MLFLOW_TRACKING_URI"] = (run_dir / "mlruns").as_uri()
    return {k: v for k, v in env.items() if k not in os.environ}  # trackio keeps its own local store


def apply_environment(names: list[str], run_dir: Path, run_name: str) -> None:
    """Set the trackers' environment in this (worker) process before the trainer is built."""
    os.environ.update(tracker_environment(names, run_dir, run_name))
