"""A training run in the foreground, as `alignstudio train` runs one: its data loaded first as the worker will
load it (bad data fails before a run folder is written), then queued through `RunsService.start` (or `resume`),
launched at once and watched until it ends (`RunsService.run_foreground`); or, for several GPUs, the
`accelerate launch` command that runs the same worker."""

from __future__ import annotations

from pathlib import Path

from ...core.errors import UserError
from ...training.run_folder import CANCELLED, SUCCEEDED

__all__ = [
    "ACCELERATE_CONFIGS",
    "CANCELLED",
    "SUCCEEDED",
    "check_data",
    "launch_command",
    "progress_line",
]

ACCELERATE_CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "accelerate"


def check_data(spec) -> None:
    """Load the spec's data as the worker will (reward data also needs its pairs): UserError if it cannot."""
    from ...training.data import load_training_data

    if spec.method == "reward":
        from ...training.reward import check_reward_data

        check_reward_data(spec.data)
    load_training_data(spec.data, spec.method)


def progress_line(row: dict) -> str:
    """A metrics row as the one line the CLI prints."""
    from ...training.metrics import MetricsCallback

    return MetricsCallback.progress_line(row)


def launch_command(run_dir: Path, workspace_root: Path, num_processes: int, deepspeed: bool) -> list[str]:
    """The `accelerate launch` command that runs the worker on `num_processes` GPUs."""
    if num_processes < 1:
        raise UserError("--num-processes must be at least 1")
    config = ACCELERATE_CONFIGS / ("deepspeed_zero3.yaml" if deepspeed else "multi_gpu.yaml")
    return [
        "accelerate",
        "launch",
        "--config_file",
        str(config),
        "--num_processes",
        str(num_processes),
        "-m",
        "alignstudio.training.worker",
        str(run_dir),
        "--workspace",
        str(workspace_root),
    ]
