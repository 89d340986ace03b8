"""The run card (card.json): everything needed to know what produced a model and to reproduce it.

Dataset fingerprint, the full spec and the trainer configuration actually used, library versions, seed,
duration, the final metrics and the diagnostics. Written atomically by the worker when a run ends (also for
failed and cancelled runs, so a card always says what happened). Pure data assembly: no training here.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "safetensors", "deepspeed")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    return str(value)


def trainer_config(args) -> dict:
    """The trainer's full configuration (a TrainingArguments subclass) as plain JSON values."""
    try:
        data = args.to_dict()
    except Exception:
        data = dict(vars(args))
    data = {k: v for k, v in data.items() if not k.startswith("_") and not k.endswith("_token")}
    return _jsonable(data)


def build_card(
    *,
    run_name: str,
    state: str,
    spec: dict,
    base_model: dict,
    dataset: dict | None,
    trainer_args: dict | None,
    started: float,
    finished: float | None = None,
    final_metrics: dict | None = None,
    summary: dict | None = None,
    diagnostics: list | None = None,
    model_dir: str | None = None,
    registered_as: str | None = None,
    trainable: dict | None = None,
    device: str | None = None,
    processes: int = 1,
    error: str | None = None,
    resumed_from: str | None = None,
    schedule: dict | None = None,
    verdict: dict | None = None,
    before_after: list | None = None,
) -> dict:
    finished = finished or time.time()
    return _jsonable(
        {
            "card_version": 1,
            "run": run_name,
            "state": state,
            "method": spec.get("method"),
            "seed": spec.get("seed"),
            "base_model": base_model,
            "dataset": dataset,
            "spec": spec,
            "schedule": schedule,
            "trainer_config": trainer_args,
            "trainable_parameters": trainable,
            "libraries": library_versions(),
            "device": device,
            "processes": processes,
            "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "argv": sys.argv},
            "started": started,
            "finished": finished,
            "duration_s": round(finished - started, 2),
            "final_metrics": final_metrics or {},
            "trainer_summary": summary or {},
            "verdict": verdict,
            "diagnostics": diagnostics or [],
            "before_after": before_after or [],
            "model": {"folder": model_dir, "registered_as": registered_as},
            "resumed_from": resumed_from,
            "error": error,
        }
    )


def write_card(path: str | Path, card: dict) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
