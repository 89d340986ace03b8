"""What one kind of policy run supplies to the worker's one training session (`worker.Session`): its data and
held-out split, trainer config, model, trainer with its callbacks' extras, the measures once the model is saved
(the before/after answers), and its verdict. A reward run's counterpart is `reward.RewardMethod`; `method_for`
picks one. The order of steps, cancel, resume, saving, registering and the run card stay the worker's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.registry import ModelRegistry
from ..core.workspace import Workspace
from .diagnostics import diagnose_spec
from .ref_cache import ref_cache_dir
from .run_folder import SUCCEEDED, RunFolder
from .schedule import Schedule
from .spec import RunSpec
from .split import Split, split_by_prompt
from .trainer_setup import Loaded, load_model, make_config, make_trainer, world_size
from .verdict import judge_spec

if TYPE_CHECKING:  # annotations only: the worker imports this module
    from .worker import Session


def data_and_split(spec: RunSpec):
    """(data, split, training set, held-out set or None) of the spec's data."""
    from .data import load_training_data

    data = load_training_data(spec.data, spec.method)
    print(f"data: {data.rows} rows ({data.fingerprint[:23]})", flush=True)
    split = split_by_prompt(data.dataset.to_list(), spec.heldout_fraction, spec.seed)
    print(split.note, flush=True)
    train_set, eval_set = data.dataset, None
    if split.active:
        from datasets import Dataset

        train_set, eval_set = Dataset.from_list(split.train), Dataset.from_list(split.heldout)
    return data, split, train_set, eval_set


def shares_cpu_with_app() -> bool:
    """A single CPU process trains beside the app's sampler; GPU and multi-process runs have their own devices."""
    import torch

    return world_size() == 1 and not torch.cuda.is_available()


class Method:
    """What one kind of run supplies to the one `Session`: its data checks, trainer config, model, trainer, and its
    measurement once the model is saved. The order of steps, the callbacks, cancel, resume, divergence, saving,
    registering and the run card are the session's, the same for every method."""

    registry_kind: str | None = None  # the kind the model is registered with (None: adapter or full)
    shares_cpu = True  # trains on one core while the app samples (core.cpu_share)

    grouped = False  # the training rows are in the order of their groups (a ranking's pairs in one step)

    def data(self, spec: RunSpec):
        from .group_batches import arrange
        from .schedule import choose

        data, split, train_set, eval_set = data_and_split(spec)
        step_rows = choose(spec, len(train_set), world_size()).batch_size * spec.grad_accum * world_size()
        train_set, eval_set, self.grouped = arrange(spec, train_set, eval_set, step_rows)
        return data, split, train_set, eval_set

    def config(self, spec: RunSpec, run: RunFolder, schedule: Schedule, heldout: bool):
        args = make_config(spec, run, schedule, heldout=heldout)
        if self.grouped:  # the trainer reads the rows in the order `group_batches` gave them
            args.train_sampling_strategy = "sequential"
        return args

    def load(self, spec: RunSpec, registry: ModelRegistry) -> Loaded:
        from transformers import set_seed

        set_seed(spec.seed)  # the LoRA weights start the same for the same seed: reproducible runs, and the same
        # model hash, part of the key of the cached reference pass (ref_cache) for sweeps and retrains
        loaded = load_model(spec, registry)
        print(
            f"model: {loaded.base_name}"
            + (f" + adapter {loaded.continued_from}" if loaded.continued_from else "")
            + (" (full fine-tuning)" if spec.full else " (LoRA)"),
            flush=True,
        )
        return loaded

    def trainer(
        self, spec: RunSpec, args, loaded: Loaded, train_set, eval_set, callbacks, workspace: Workspace, metrics_cb
    ):
        from .metrics import TokenCounter

        trainer = make_trainer(
            spec, args, loaded, train_set, callbacks, eval_dataset=eval_set, ref_cache=ref_cache_dir(workspace.root)
        )
        if spec.method in ("orpo", "simpo"):  # these trainers log no num_tokens
            counter = TokenCounter(trainer.data_collator)
            trainer.data_collator = counter
            metrics_cb.token_counter = counter
        return trainer

    def card_start(self, split: Split) -> dict:
        """What the method adds to the run card from the start (kept if the run fails or is cancelled)."""
        return {}

    def measure(self, s: "Session", model_dir: Path, trained: bool) -> dict:
        """After the model is saved (main process): extra outcome fields. A policy answers a few held-out prompts
        with the base and the trained model, side by side, and the two are compared (`generation_check`)."""
        if not (trained and s.spec.compare_prompts):
            return {}
        from .before_after import answer_side_by_side
        from .generation_check import compare_generation, reward_model_for

        prompts = [r["prompt"] for r in (s.split.heldout or s.data.dataset.to_list())]
        rows = answer_side_by_side(
            s.trainer, s.loaded, prompts, s.spec.compare_prompts, s.spec.seed, heldout=s.split.active
        )
        reward_model = reward_model_for(s.store, s.data.fingerprint) if s.store is not None else None
        s.card_extra["generation"] = compare_generation(s.trainer, s.loaded, s.spec, rows, reward_model)  # `judge`
        return {"before_after": rows}

    def judge(self, s: "Session", rows: list[dict], state: str, extra: dict):
        """(diagnostics, verdict or None) of a run that ended in `state`."""
        diagnostics = [d.to_dict() for d in diagnose_spec(rows, s.spec)]
        if state != SUCCEEDED and not extra.get("diverged"):
            return diagnostics, None
        return diagnostics, judge_spec(
            rows,
            s.spec,
            heldout_rows=len(s.split.heldout),
            best_step=extra.get("best_step"),
            stopped_early_at=extra.get("stopped_early_at"),
            failed_nan=bool(extra.get("diverged")),
            drift_budget=s.spec.drift_fraction if s.drift_cb else None,
            stopped_on_drift_at=extra.get("stopped_on_drift_at"),
            generation=s.card_extra.get("generation"),
        )


def method_for(spec: RunSpec) -> Method:
    if spec.method == "reward":  # a reward model: its own trainer and held-out measures
        from .reward import RewardMethod

        return RewardMethod()
    return Method()
