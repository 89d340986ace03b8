"""What a training run leaves in its folder besides status: the metrics streams matched to the checkpoint it
resumes from, the final model folder (from the trainer, or from a final checkpoint), its registration as a
model version, and the card entries about the model.

Only the main process writes (`is_main_process`); it knows nothing about how the trainer is built.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..core import models as core_models
from ..core.store import Store
from .run_folder import RunFolder
from .spec import RunSpec
from .trainer_setup import Loaded, is_main_process


def truncate_metrics(run: RunFolder, last_step: int) -> None:
    """After a resume from checkpoint N, drop metrics and held-out lines past step N (they will be logged again)."""
    for path, rows in ((run.metrics_path, run.metrics()), (run.heldout_path, run.heldout())):
        rows = [r for r in rows if int(r.get("step") or 0) <= last_step]
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        os.replace(tmp, path)


def start_metrics(run: RunFolder, main: bool) -> Path | None:
    """The checkpoint to resume from (None = a fresh start), with the metrics streams made to match it: cut back
    to the checkpoint's step on a resume, emptied on a fresh start."""
    checkpoint = run.last_checkpoint()
    if main and checkpoint is not None:
        truncate_metrics(run, int(checkpoint.name.split("-")[-1]))
        print(f"resuming from {checkpoint.name}", flush=True)
    elif main:
        run.metrics_path.unlink(missing_ok=True)
        run.heldout_path.unlink(missing_ok=True)
    return checkpoint


def save_final_model(trainer, loaded: Loaded, run: RunFolder) -> Path:
    """model/ in standard format; an adapter names its base by absolute folder so it reloads anywhere here."""
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(unwrapped, "peft_config") and "ref" in getattr(unwrapped, "peft_config", {}):
        unwrapped.set_adapter("default")
        unwrapped.delete_adapter("ref")  # TRL's frozen reference copy is not part of the result
    tmp = run.path / "model.partial"
    if is_main_process():
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))
    trainer.accelerator.wait_for_everyone()
    if not is_main_process():
        return run.model_dir
    return _finish_model_dir(tmp, loaded, run)


CHECKPOINT_STATE_FILES = ("optimizer.pt", "scheduler.pt", "trainer_state.json", "training_args.bin", "README.md")


def checkpoint_is_final(checkpoint: Path) -> bool:
    """True when the checkpoint was saved at the last step (training had finished; only saving failed)."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return bool(state.get("max_steps")) and state.get("global_step", 0) >= state["max_steps"]


def model_from_checkpoint(checkpoint: Path, loaded: Loaded, run: RunFolder) -> Path:
    """model/ from a final checkpoint's weights (resuming there would train one step too many)."""
    tmp = run.path / "model.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for item in checkpoint.iterdir():
        if item.is_file() and item.name not in CHECKPOINT_STATE_FILES and not item.name.startswith("rng_state"):
            shutil.copy2(item, tmp / item.name)
    return _finish_model_dir(tmp, loaded, run)


def _finish_model_dir(tmp: Path, loaded: Loaded, run: RunFolder) -> Path:
    config_path = tmp / "adapter_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        # portable (a hub id where there is one); the local folder is in the run card
        config["base_model_name_or_path"] = core_models.portable_name(loaded.base_folder)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
    if not (tmp / "tokenizer_config.json").exists():
        loaded.tokenizer.save_pretrained(str(tmp))
    (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; the card holds the configuration instead
    if run.model_dir.exists():
        shutil.rmtree(run.model_dir)
    os.replace(tmp, run.model_dir)
    return run.model_dir


def register(store: Store, run: RunFolder, spec: RunSpec, loaded: Loaded, kind: str | None = None) -> str:
    """Register the run's model as a version (a free name: `-2`, `-3`, ... when taken by another folder); its
    kind is adapter or full unless given (reward models)."""
    name = spec.register_as or run.name
    taken = {v["name"]: v["path"] for v in store.model_versions()}
    candidate, n = name, 2
    while candidate in taken and Path(taken[candidate]).resolve() != run.model_dir.resolve():
        candidate, n = f"{name}-{n}", n + 1
    kind = kind or ("adapter" if loaded.is_adapter_output else "full")
    store.register_model(candidate, run.model_dir, kind=kind, base=loaded.base_name, run_dir=run.path)
    return candidate


def base_model_entry(loaded: Loaded) -> dict:
    """The card's record of the base: registry name, local folder, the portable name adapters carry."""
    return {
        "name": loaded.base_name,
        "folder": str(loaded.base_folder),
        "continued_from": loaded.continued_from,
        "portable": core_models.portable_name(loaded.base_folder),
    }


def _trainable(model) -> dict:
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"trainable": trainable, "total": total}


def best_step(trainer) -> int | None:
    """The step of the checkpoint with the best held-out loss (loaded at the end), or None."""
    path = getattr(trainer.state, "best_model_checkpoint", None)
    if not path or not trainer.args.load_best_model_at_end:
        return None
    try:
        return int(str(path).rstrip("/").rsplit("-", 1)[-1])
    except ValueError:
        return None
