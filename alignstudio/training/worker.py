"""The training worker: `python -m alignstudio.training.worker RUN_DIR [--workspace WS]`.

Runs one run folder to the end with TRL's trainers (DPO/KTO top level; ORPO from `trl.experimental.orpo`;
SimPO as `trl.experimental.cpo.CPOTrainer(loss_type="simpo", cpo_alpha=0)`), LoRA by default through PEFT,
and reports through the folder: status.json transitions, metrics.jsonl lines, checkpoints, the final model
(`model/`, standard PEFT or Hugging Face format) and card.json; on success the model is registered in the
store. The same module runs under `accelerate launch` (several GPUs, DeepSpeed ZeRO-3): every process
trains, only the main process writes. It never reimplements a loss.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ..core import models as core_models  # noqa: E402
from ..core.errors import UserError  # noqa: E402
from ..core.registry import ModelRegistry  # noqa: E402
from ..core.store import Store  # noqa: E402
from ..core.workspace import Workspace  # noqa: E402
from .card import build_card, trainer_config, write_card  # noqa: E402
from .diagnostics import diagnose_spec  # noqa: E402
from .merge import base_name  # noqa: E402
from .model_card import write_model_card  # noqa: E402
from .run_folder import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, ERROR_TAIL_LINES, RunFolder  # noqa: E402
from .schedule import Schedule, choose  # noqa: E402
from .spec import RunSpec  # noqa: E402
from .split import split_by_prompt  # noqa: E402
from .trackers import apply_environment  # noqa: E402
from .verdict import judge_spec  # noqa: E402

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def is_main_process() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


# -- pieces ------------------------------------------------------------------------------------------------


def lora_targets(model) -> list[str] | str:
    """q/k/v/o/gate/up/down_proj when the model has them (llama-like), else every linear layer."""
    import torch

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    present = [n for n in LLAMA_TARGETS if n in names]
    return present if {"q_proj", "v_proj"} <= set(present) else "all-linear"


def precision_flags(spec: RunSpec, cuda: bool) -> dict:
    import torch

    precision = spec.precision
    if precision == "auto":  # bf16 autocast where the hardware runs bf16 natively
        if cuda:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if core_models.cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and not cuda:
        raise UserError("precision fp16 needs a GPU; use fp32 (or bf16) on CPU")
    return {"bf16": precision == "bf16", "fp16": precision == "fp16", "use_cpu": not cuda}


@dataclass
class Loaded:
    model: object
    ref_model: object | None
    tokenizer: object
    peft_config: object | None
    base_folder: Path
    base_name: str
    is_adapter_output: bool
    continued_from: str | None


def load_model(spec: RunSpec, registry: ModelRegistry) -> Loaded:
    import torch
    from transformers import AutoModelForCausalLM

    ref = registry.resolve(spec.model)
    base_folder = ref.base_folder if ref.is_adapter else ref.folder
    tokenizer_folder = ref.folder if (ref.folder / "tokenizer_config.json").exists() else base_folder
    tokenizer = core_models.load_tokenizer(tokenizer_folder)
    # LoRA under bf16 autocast: the frozen base is stored in bf16 (autocast would cast every frozen weight on
    # every forward and backward, ~40% of a CPU step; it also halves memory), the adapter stays float32 (PEFT's
    # default), so its updates are not lost to bf16 rounding. Full fine-tuning keeps float32 master weights.
    lora_bf16 = not spec.full and precision_flags(spec, torch.cuda.is_available())["bf16"]
    model = AutoModelForCausalLM.from_pretrained(
        core_models.check_model_folder(base_folder), dtype=torch.bfloat16 if lora_bf16 else torch.float32,
        use_safetensors=True, trust_remote_code=False)
    model.config.use_cache = False
    peft_config, continued_from = None, None
    if ref.is_adapter:
        from peft import PeftModel

        continued_from = ref.name
        if spec.full:
            model = PeftModel.from_pretrained(model, ref.folder).merge_and_unload()
        else:  # keep training this adapter; TRL makes a frozen "ref" copy of it as the reference
            model = PeftModel.from_pretrained(model, ref.folder, is_trainable=True)
    elif not spec.full:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout, bias="none",
            target_modules=spec.lora_target_modules or lora_targets(model), task_type="CAUSAL_LM")
    ref_model = None
    if spec.full and spec.uses_reference:
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
            # ZeRO-3 shards parameters; TRL loads its own frozen reference from the same folder instead
            if ref.is_adapter:
                raise UserError("full fine-tuning on top of an adapter under DeepSpeed: merge the adapter first "
                                "(Train tab > Merge) and train the merged checkpoint")
        else:
            ref_model = copy.deepcopy(model)  # an explicit frozen reference copy
            ref_model.requires_grad_(False)
            ref_model.eval()
    return Loaded(model, ref_model, tokenizer, peft_config, Path(base_folder),
                  base_name(registry, Path(base_folder)), not spec.full, continued_from)


def heldout_settings(spec: RunSpec, schedule: Schedule, heldout: bool) -> tuple[int, dict]:
    """(save_steps, evaluation arguments) of a trainer config: with a held-out split, evaluate it every
    `eval_steps` and keep the best checkpoint (one is saved at every evaluation); without, neither."""
    if not heldout:
        return spec.save_steps, {}
    return schedule.eval_steps, dict(eval_strategy="steps", eval_steps=schedule.eval_steps,
                                     per_device_eval_batch_size=8, load_best_model_at_end=spec.early_stopping,
                                     metric_for_best_model="eval_loss", greater_is_better=False)


def run_callbacks(spec: RunSpec, heldout: bool, *callbacks) -> list:
    """The run's callbacks, plus early stopping on the held-out loss when there is a split and it is on."""
    if heldout and spec.early_stopping:
        from transformers import EarlyStoppingCallback

        return [*callbacks, EarlyStoppingCallback(early_stopping_patience=spec.patience)]
    return list(callbacks)


def make_config(spec: RunSpec, run: RunFolder, schedule: Schedule | None = None, heldout: bool = False):
    """The TRL config for the spec's method. Built before the model is loaded, so that under DeepSpeed
    ZeRO-3 `from_pretrained` already loads the weights sharded. `schedule` holds the values chosen from the
    data (the spec's own values where it sets them); `heldout` turns on evaluation, early stopping and
    keep-the-best on the held-out split."""
    import torch

    schedule = schedule or choose(spec, 0)
    save_steps, evaluation = heldout_settings(spec, schedule, heldout)

    cuda = torch.cuda.is_available()
    # TRL caches precomputed reference log-probs next to the dataset; ours is in memory, so each process would
    # look for the main process's cache file in its own temporary folder: several processes compute per step
    precompute = spec.precompute_ref_log_probs and world_size() == 1
    common = dict(
        output_dir=str(run.checkpoints_dir), per_device_train_batch_size=schedule.batch_size,
        gradient_accumulation_steps=spec.grad_accum, learning_rate=schedule.learning_rate,
        num_train_epochs=schedule.num_train_epochs, max_steps=spec.max_steps or -1,
        lr_scheduler_type=spec.lr_scheduler, warmup_steps=schedule.warmup_steps, weight_decay=spec.weight_decay,
        max_grad_norm=spec.max_grad_norm, seed=spec.seed, logging_steps=spec.logging_steps, logging_first_step=True,
        save_strategy="steps", save_steps=save_steps, save_total_limit=2, report_to=spec.report_to or "none", disable_tqdm=True,
        dataloader_num_workers=0, activation_checkpointing=spec.gradient_checkpointing,
        max_length=spec.max_length, **evaluation, **precision_flags(spec, cuda),
    )
    if spec.method == "dpo":
        from trl import DPOConfig

        return DPOConfig(beta=spec.beta, loss_type=list(spec.loss_type), loss_weights=spec.loss_weights,
                         label_smoothing=spec.label_smoothing,
                         precompute_ref_log_probs=precompute, **common)
    if spec.method == "kto":
        from trl import KTOConfig

        return KTOConfig(beta=spec.beta, loss_type=spec.loss_type[0], desirable_weight=spec.desirable_weight,
                         undesirable_weight=spec.undesirable_weight,
                         precompute_ref_log_probs=precompute, **common)
    if spec.method == "orpo":
        from trl.experimental.orpo import ORPOConfig

        return ORPOConfig(beta=spec.beta, remove_unused_columns=False, **common)
    if spec.method == "simpo":
        from trl.experimental.cpo import CPOConfig

        return CPOConfig(loss_type="simpo", cpo_alpha=0.0, simpo_gamma=spec.simpo_gamma, beta=spec.beta,
                         label_smoothing=spec.label_smoothing, remove_unused_columns=False, **common)
    raise UserError(f"unknown method {spec.method!r}")


def make_trainer(spec: RunSpec, args, loaded: Loaded, dataset, callbacks: list, eval_dataset=None):
    """The TRL trainer for the spec's method (DPO/KTO get the reference; ORPO/SimPO have none)."""
    kwargs = dict(model=loaded.model, args=args, train_dataset=dataset, eval_dataset=eval_dataset,
                  processing_class=loaded.tokenizer, peft_config=loaded.peft_config, callbacks=callbacks)
    from .cpu_fast import compact_lm_head_on_cpu, prepare_model, tune_for_cpu

    if spec.method in ("dpo", "kto"):
        from trl import DPOTrainer, KTOTrainer

        if args.use_cpu:
            prepare_model(loaded.model, bf16=bool(args.bf16))
        with compact_lm_head_on_cpu():
            trainer = (DPOTrainer if spec.method == "dpo" else KTOTrainer)(ref_model=loaded.ref_model, **kwargs)
        if args.use_cpu:
            chosen = tune_for_cpu(trainer, rows_per_step=2 * args.per_device_train_batch_size,
                                  max_length=spec.max_length)
            print(f"cpu: {chosen['attention']} attention, LoRA input casts "
                  f"{'on' if chosen['lora_input_cast'] else 'off'}", flush=True)
        return trainer
    if spec.method == "orpo":
        from trl.experimental.orpo import ORPOTrainer

        return ORPOTrainer(**kwargs)
    from trl.experimental.cpo import CPOTrainer

    return CPOTrainer(**kwargs)


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
    return {"name": loaded.base_name, "folder": str(loaded.base_folder), "continued_from": loaded.continued_from,
            "portable": core_models.portable_name(loaded.base_folder)}


def _trainable(model) -> dict:
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"trainable": trainable, "total": total}


# -- the run ---------------------------------------------------------------------------------------------


def train(run: RunFolder, workspace: Workspace, store: Store) -> dict:
    """Train the run to the end; returns the fields of its final status (state, error, ...)."""
    import torch

    from .data import load_training_data
    from .metrics import ControlCallback, MetricsCallback, TokenCounter

    if run.spec().method == "reward":  # a reward model: its own trainer and held-out measures
        from .reward import train_reward

        return train_reward(run, workspace, store)
    main = is_main_process()
    started = time.time()
    spec = run.spec()
    print(f"run {run.name}: {spec.label} on {spec.model} with {spec.data}", flush=True)
    data = load_training_data(spec.data, spec.method)
    print(f"data: {data.rows} rows ({data.fingerprint[:23]})", flush=True)
    split = split_by_prompt(data.dataset.to_list(), spec.heldout_fraction, spec.seed)
    print(split.note, flush=True)
    train_set, eval_set = data.dataset, None
    if split.active:
        from datasets import Dataset

        train_set, eval_set = Dataset.from_list(split.train), Dataset.from_list(split.heldout)
    schedule = choose(spec, len(train_set), world_size())
    print(f"schedule: {schedule.summary()}", flush=True)
    registry = ModelRegistry(workspace, store)
    args = make_config(spec, run, schedule, heldout=split.active)
    loaded = load_model(spec, registry)
    print(f"model: {loaded.base_name}" + (f" + adapter {loaded.continued_from}" if loaded.continued_from else "")
          + (" (full fine-tuning)" if spec.full else " (LoRA)"), flush=True)

    checkpoint = start_metrics(run, main)

    metrics_cb = MetricsCallback(run.metrics_path, world_size=world_size(), is_main=main)
    control_cb = ControlCallback(run.cancel_path)

    def on_row(row):
        if main:
            run.update(step=row["step"], max_steps=row.get("max_steps"), eta_s=row.get("eta_s"))

    metrics_cb.on_row = on_row
    callbacks = run_callbacks(spec, split.active, metrics_cb, control_cb)
    apply_environment(spec.report_to, run.path, run.name)
    trainer = make_trainer(spec, args, loaded, train_set, callbacks, eval_dataset=eval_set)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our callback prints one readable line per step instead
    if spec.method in ("orpo", "simpo"):  # these trainers log no num_tokens
        counter = TokenCounter(trainer.data_collator)
        trainer.data_collator = counter
        metrics_cb.token_counter = counter
    if main:
        run.update(max_steps=trainer.args.max_steps if trainer.args.max_steps > 0 else None)

    def finish(state: str, error: str | None = None, **extra) -> dict:
        rows = run.all_metrics()
        diagnostics = [d.to_dict() for d in diagnose_spec(rows, spec)]
        verdict = None
        if state == SUCCEEDED or extra.get("diverged"):
            verdict = judge_spec(rows, spec, heldout_rows=len(split.heldout), best_step=extra.get("best_step"),
                                 stopped_early_at=extra.get("stopped_early_at"),
                                 failed_nan=bool(extra.pop("diverged", False)))
            extra["verdict"] = verdict.headline
        before_after = extra.pop("before_after", None)
        if main:
            card = build_card(
                run_name=run.name, state=state, spec=spec.to_dict(),
                base_model=base_model_entry(loaded),
                dataset={"source": data.source, "fingerprint": data.fingerprint, "rows": data.rows,
                         "kind": data.kind, "label_sources": data.label_sources, "training_rows": len(train_set), "heldout": split.to_dict()},
                schedule=schedule.to_dict(), verdict=verdict.to_dict() if verdict else None,
                before_after=before_after,
                trainer_args=trainer_config(trainer.args), started=started,
                final_metrics=metrics_cb.last or (rows[-1] if rows else {}),
                summary=metrics_cb.summary, diagnostics=diagnostics, error=error,
                model_dir=extra.get("model_dir"), registered_as=extra.get("registered_as"),
                trainable=_trainable(trainer.model),
                device=("cuda:" + torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu",
                processes=world_size(), resumed_from=checkpoint.name if checkpoint else None)
            write_card(run.card_path, card)
            if extra.get("model_dir"):
                write_model_card(extra["model_dir"], card)
        return {"state": state, "error": error, **extra}

    if run.cancel_requested():
        return finish(CANCELLED)
    if checkpoint is not None and checkpoint_is_final(checkpoint):
        print(f"{checkpoint.name} is the final step: saving the model from it", flush=True)
        model_dir = model_from_checkpoint(checkpoint, loaded, run) if main else run.model_dir
        registered = register(store, run, spec, loaded) if main else None
        return finish(SUCCEEDED, step=int(checkpoint.name.split("-")[-1]), model_dir=str(model_dir),
                      registered_as=registered)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    step = trainer.state.global_step
    if metrics_cb.nan_at is not None:
        bad = sorted(set(metrics_cb.nan_keys), key=lambda k: (k != "loss", k != "grad_norm", k))
        keys = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
        return finish(FAILED, f"training diverged: {keys} became NaN at step {metrics_cb.nan_at}; the run was "
                              "stopped (lower the learning rate, use fp32/bf16)", step=step, diverged=True)
    if control_cb.cancelled_at is not None and step < trainer.state.max_steps:
        return finish(CANCELLED, step=step, checkpoint=str(run.last_checkpoint() or "") or None)
    best = best_step(trainer)
    stopped_early = step if (split.active and step < trainer.state.max_steps and control_cb.cancelled_at is None) \
        else None
    if best is not None:
        print(f"kept the checkpoint of step {best} (best held-out loss "
              f"{trainer.state.best_metric:.4f})" + (f"; early stopping at step {stopped_early}" if stopped_early
                                                      else ""), flush=True)
    model_dir = save_final_model(trainer, loaded, run)
    registered = register(store, run, spec, loaded) if main else None
    if main:
        print(f"saved {model_dir}" + (f", registered as {registered}" if registered else ""), flush=True)
    samples = None
    if main and spec.compare_prompts:
        from .before_after import answer_side_by_side

        prompts = [r["prompt"] for r in (split.heldout or data.dataset.to_list())]
        samples = answer_side_by_side(trainer, loaded, prompts, spec.compare_prompts, spec.seed,
                                      heldout=split.active)
    return finish(SUCCEEDED, step=step, model_dir=str(model_dir), registered_as=registered, best_step=best,
                  stopped_early_at=stopped_early, before_after=samples)


def best_step(trainer) -> int | None:
    """The step of the checkpoint with the best held-out loss (loaded at the end), or None."""
    path = getattr(trainer.state, "best_model_checkpoint", None)
    if not path or not trainer.args.load_best_model_at_end:
        return None
    try:
        return int(str(path).rstrip("/").rsplit("-", 1)[-1])
    except ValueError:
        return None


def write_failure_card(run: RunFolder, error: str, started: float) -> None:
    """A card for a run that failed before (or outside) the trainer's own reporting."""
    try:
        spec = run.spec()
        rows = run.metrics()
        diagnostics = [d.to_dict() for d in diagnose_spec(rows, spec)]
        write_card(run.card_path, build_card(
            run_name=run.name, state=FAILED, spec=spec.to_dict(), base_model={"name": spec.model}, dataset=None,
            trainer_args=None, started=started, final_metrics=rows[-1] if rows else {}, diagnostics=diagnostics,
            processes=world_size(), error=error))
    except Exception as exc:  # the status still says what happened
        print(f"could not write the run card: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alignstudio.training.worker",
                                     description="Run one AlignStudio training run folder to the end.")
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
        workspace = Workspace.open(args.workspace)
        store = Store(workspace.db_path)
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
