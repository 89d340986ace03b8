"""Building a run's TRL pieces: the model (LoRA by default, through PEFT), the config and the trainer.

DPO/KTO from TRL's top level; ORPO from `trl.experimental.orpo`; SimPO as
`trl.experimental.cpo.CPOTrainer(loss_type="simpo", cpo_alpha=0)`. Also the process facts (rank, world size)
the config depends on under `accelerate launch`. It writes nothing: the run folder is `outputs`'s and the
worker's; it never reimplements a loss.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

# set before TRL is imported (lazily, below): its experimental trainers warn on import otherwise
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ..core import models as core_models  # noqa: E402
from ..core.errors import UserError  # noqa: E402
from ..core.registry import ModelRegistry  # noqa: E402
from .merge import base_name  # noqa: E402
from .run_folder import RunFolder  # noqa: E402
from .schedule import Schedule, choose  # noqa: E402
from .spec import RunSpec  # noqa: E402

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
        core_models.check_model_folder(base_folder),
        dtype=torch.bfloat16 if lora_bf16 else torch.float32,
        use_safetensors=True,
        trust_remote_code=False,
    )
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
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            bias="none",
            target_modules=spec.lora_target_modules or lora_targets(model),
            task_type="CAUSAL_LM",
        )
    ref_model = None
    if spec.full and spec.uses_reference:
        if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
            # ZeRO-3 shards parameters; TRL loads its own frozen reference from the same folder instead
            if ref.is_adapter:
                raise UserError(
                    "full fine-tuning on top of an adapter under DeepSpeed: merge the adapter first "
                    "(Train tab > Merge) and train the merged checkpoint"
                )
        else:
            ref_model = copy.deepcopy(model)  # an explicit frozen reference copy
            ref_model.requires_grad_(False)
            ref_model.eval()
    return Loaded(
        model,
        ref_model,
        tokenizer,
        peft_config,
        Path(base_folder),
        base_name(registry, Path(base_folder)),
        not spec.full,
        continued_from,
    )


def heldout_settings(spec: RunSpec, schedule: Schedule, heldout: bool) -> tuple[int, dict]:
    """(save_steps, evaluation arguments) of a trainer config: with a held-out split, evaluate it every
    `eval_steps` and keep the best checkpoint (one is saved at every evaluation; within the drift budget where
    one is set); without, neither."""
    if not heldout:
        return spec.save_steps, {}
    from .drift import KEPT_METRIC, drift_on

    return schedule.eval_steps, dict(
        eval_strategy="steps",
        eval_steps=schedule.eval_steps,
        per_device_eval_batch_size=8,
        load_best_model_at_end=spec.early_stopping,
        # under a drift budget, the best held-out loss among the checkpoints within it (drift.DriftCallback)
        metric_for_best_model=KEPT_METRIC if drift_on(spec, heldout) else "eval_loss",
        greater_is_better=False,
    )


def run_callbacks(spec: RunSpec, heldout: bool, *callbacks) -> list:
    """The run's callbacks, plus early stopping on the held-out loss when there is a split and it is on."""
    if heldout and spec.early_stopping:
        from transformers import EarlyStoppingCallback

        return [*callbacks, EarlyStoppingCallback(early_stopping_patience=spec.patience)]
    return list(callbacks)


REFERENCE_BATCH_CPU = 16  # pairs per batch of the precomputed reference pass on a CPU: forward only, and its packed
# rows (packing.py) waste fewer positions and share the system prompt wider than at the training batch size
# (measured on the bench's 128 pairs: 74 s against 83 s, means of 3 alternated runs each; the same log-probs)


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
    reference = dict(
        precompute_ref_log_probs=precompute,
        precompute_ref_batch_size=None if cuda else max(REFERENCE_BATCH_CPU, schedule.batch_size),
    )
    common = dict(
        output_dir=str(run.checkpoints_dir),
        per_device_train_batch_size=schedule.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        learning_rate=schedule.learning_rate,
        num_train_epochs=schedule.num_train_epochs,
        max_steps=spec.max_steps or -1,
        lr_scheduler_type=spec.lr_scheduler,
        warmup_steps=schedule.warmup_steps,
        weight_decay=spec.weight_decay,
        max_grad_norm=spec.max_grad_norm,
        seed=spec.seed,
        logging_steps=spec.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        report_to=spec.report_to or "none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        activation_checkpointing=spec.gradient_checkpointing,
        max_length=spec.max_length,
        **evaluation,
        **precision_flags(spec, cuda),
    )
    if spec.method == "dpo":
        from trl import DPOConfig

        return DPOConfig(
            beta=spec.beta,
            loss_type=list(spec.loss_type),
            loss_weights=spec.loss_weights,
            label_smoothing=spec.label_smoothing,
            **reference,
            **common,
        )
    if spec.method == "kto":
        from trl import KTOConfig

        return KTOConfig(
            beta=spec.beta,
            loss_type=spec.loss_type[0],
            desirable_weight=spec.desirable_weight,
            undesirable_weight=spec.undesirable_weight,
            **reference,
            **common,
        )
    if spec.method == "orpo":
        from trl.experimental.orpo import ORPOConfig

        return ORPOConfig(beta=spec.beta, remove_unused_columns=False, **common)
    if spec.method == "simpo":
        from trl.experimental.cpo import CPOConfig

        return CPOConfig(
            loss_type="simpo",
            cpo_alpha=0.0,
            simpo_gamma=spec.simpo_gamma,
            beta=spec.beta,
            label_smoothing=spec.label_smoothing,
            remove_unused_columns=False,
            **common,
        )
    raise UserError(f"unknown method {spec.method!r}")


def make_trainer(
    spec: RunSpec, args, loaded: Loaded, dataset, callbacks: list, eval_dataset=None, ref_cache: Path | None = None
):
    """The TRL trainer for the spec's method (DPO/KTO get the reference; ORPO/SimPO have none). With
    `ref_cache`, DPO's and KTO's precomputed reference pass is kept there and reused (ref_cache.py)."""
    kwargs = dict(
        model=loaded.model,
        args=args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        processing_class=loaded.tokenizer,
        peft_config=loaded.peft_config,
        callbacks=callbacks,
    )
    from .cpu_fast import compact_lm_head_on_cpu, keep_freed_memory, prepare_model, tune_for_cpu
    from .ref_cache import cached_trainer

    if args.use_cpu:  # the process that builds the trainer is the one that trains
        keep_freed_memory()
    if spec.method in ("dpo", "kto"):
        from trl import DPOTrainer, KTOTrainer

        if args.use_cpu:
            prepare_model(loaded.model, bf16=bool(args.bf16))
        with compact_lm_head_on_cpu():
            trainer_class = KTOTrainer if spec.method == "kto" else DPOTrainer
            if ref_cache is not None and args.precompute_ref_log_probs:
                trainer_class = cached_trainer(trainer_class, ref_cache)
            trainer = trainer_class(ref_model=loaded.ref_model, **kwargs)
        if args.use_cpu:
            chosen = tune_for_cpu(
                trainer, rows_per_step=2 * args.per_device_train_batch_size, max_length=spec.max_length
            )
            print(
                f"cpu: {chosen['attention']} attention, LoRA input casts "
                f"{'on' if chosen['lora_input_cast'] else 'off'}",
                flush=True,
            )
        return trainer
    if spec.method == "orpo":
        from trl.experimental.orpo import ORPOTrainer

        return ORPOTrainer(**kwargs)
    from trl.experimental.cpo import CPOTrainer

    return CPOTrainer(**kwargs)
