"""The rules a `RunSpec` (`training.spec`) is checked against on creation: the loss types each method takes (TRL's
`DPOConfig` does not check them, so we do) and the numbers training accepts. Each rule normalizes the spec in
place and raises `UserError` naming the field.
"""

from __future__ import annotations

import math

from ..core.errors import UserError
from ..core.settings import settings as settings_of
from .trackers import check_trackers

# DPOTrainer's loss types in TRL 1.16 (trl/trainer/dpo_trainer.py, `_compute_loss`).
DPO_LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
)
KTO_LOSS_TYPES = ("kto", "apo_zero_unpaired")
DEFAULT_LOSS = {"dpo": ["sigmoid"], "kto": ["kto"], "orpo": ["orpo"], "simpo": ["simpo"], "reward": ["bradley_terry"]}


def check_loss(spec) -> None:
    """The loss types and weights the method takes (TRL's configs do not check them), normalized."""
    loss = spec.loss_type
    if isinstance(loss, str):
        loss = [part.strip() for part in loss.split(",") if part.strip()]
    loss = [str(x).strip().lower() for x in (loss or [])] or list(DEFAULT_LOSS[spec.method])
    if spec.method == "dpo":
        unknown = [x for x in loss if x not in DPO_LOSS_TYPES]
        if unknown:
            raise UserError(f"loss_type {unknown[0]!r} is not a DPO loss; choose from {', '.join(DPO_LOSS_TYPES)}")
        if len(set(loss)) != len(loss):
            raise UserError(f"loss_type lists {loss} with a repeat")
    elif spec.method == "kto":
        if len(loss) != 1 or loss[0] not in KTO_LOSS_TYPES:
            raise UserError(f"KTO takes one loss_type of {', '.join(KTO_LOSS_TYPES)}, not {loss}")
    elif loss != DEFAULT_LOSS[spec.method]:
        raise UserError(
            f"{spec.method.upper()} has a single loss; loss_type {loss} does not apply "
            "(use method 'dpo' for DPO loss variants)"
        )
    spec.loss_type = loss
    if spec.loss_weights is not None:
        if spec.method != "dpo":
            raise UserError("loss_weights only apply to DPO loss combinations")
        spec.loss_weights = [float(w) for w in spec.loss_weights]
        if len(spec.loss_weights) != len(loss):
            raise UserError(f"loss_weights has {len(spec.loss_weights)} values for {len(loss)} loss types")
        if any(not math.isfinite(w) or w < 0 for w in spec.loss_weights):
            raise UserError("loss_weights must be finite and non-negative")
    if not 0.0 <= spec.label_smoothing < 0.5:
        raise UserError(f"label_smoothing must be in [0, 0.5), got {spec.label_smoothing}")
    if "exo_pair" in loss and spec.label_smoothing == 0.0:
        raise UserError("loss_type exo_pair needs label_smoothing > 0 (the EXO paper uses 1e-3)")


def check_numbers(spec) -> None:
    """Numbers within what training accepts (the offered ranges are the rule where a field has one)."""

    def need(cond: bool, message: str) -> None:
        if not cond:
            raise UserError(message)

    for name in ("learning_rate", "num_train_epochs", "batch_size", "warmup_steps"):  # None = chosen from the data
        if getattr(spec, name) in ("", "auto"):
            setattr(spec, name, None)
    for name in (
        "beta",
        "simpo_gamma",
        "desirable_weight",
        "undesirable_weight",
        "weight_decay",
        "max_grad_norm",
        "lora_dropout",
        "label_smoothing",
        "heldout_fraction",
        *[n for n in ("learning_rate", "num_train_epochs") if getattr(spec, n) is not None],
    ):
        value = getattr(spec, name)
        need(
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
            f"{name} must be a finite number, got {value!r}",
        )
        setattr(spec, name, float(value))
    for name in (
        "grad_accum",
        "max_length",
        "seed",
        "lora_r",
        "lora_alpha",
        "logging_steps",
        "save_steps",
        "patience",
        "compare_prompts",
        *[n for n in ("batch_size", "warmup_steps") if getattr(spec, n) is not None],
    ):
        value = getattr(spec, name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        need(isinstance(value, int) and not isinstance(value, bool), f"{name} must be a whole number, got {value!r}")
        setattr(spec, name, value)
    need(spec.beta > 0, f"beta must be > 0, got {spec.beta}")
    need(spec.learning_rate is None or spec.learning_rate > 0, f"learning_rate must be > 0, got {spec.learning_rate}")
    need(
        spec.num_train_epochs is None or spec.num_train_epochs > 0,
        f"num_train_epochs must be > 0, got {spec.num_train_epochs}",
    )
    if spec.max_steps is not None:
        if isinstance(spec.max_steps, float) and spec.max_steps.is_integer():
            spec.max_steps = int(spec.max_steps)
        need(
            isinstance(spec.max_steps, int) and not isinstance(spec.max_steps, bool),
            f"max_steps must be a whole number, got {spec.max_steps!r}",
        )
        if spec.max_steps <= 0:
            spec.max_steps = None  # 0 / -1: train by epochs
    need(spec.batch_size is None or spec.batch_size >= 1, "batch_size must be at least 1")
    need(
        spec.method != "kto" or spec.batch_size is None or spec.batch_size >= 2,
        "KTO needs batch_size of at least 2 (it estimates its KL term from the other examples in a batch)",
    )
    described = settings_of(type(spec))
    low = {
        name: described[name].minimum
        for name in ("grad_accum", "max_length", "patience", "lora_r", "lora_alpha", "seed")
    }  # the offered minimum is the rule
    need(spec.grad_accum >= low["grad_accum"], f"grad_accum must be at least {low['grad_accum']}")
    need(
        spec.max_length >= low["max_length"],
        f"max_length must be at least {low['max_length']} tokens, got {spec.max_length}",
    )
    need(spec.warmup_steps is None or spec.warmup_steps >= 0, "warmup_steps must be >= 0")
    held, compare = described["heldout_fraction"], described["compare_prompts"]
    need(
        held.minimum <= spec.heldout_fraction <= held.maximum,
        f"heldout_fraction must be in [{held.minimum:g}, {held.maximum:g}], got {spec.heldout_fraction}",
    )
    need(spec.patience >= low["patience"], f"patience must be at least {low['patience']}")
    need(
        compare.minimum <= spec.compare_prompts <= compare.maximum,
        f"compare_prompts must be in {compare.minimum}..{compare.maximum}",
    )
    spec.drift_budget = float(spec.drift_budget or 0.0)  # None (a hand-written spec.json) is off, as 0 is
    drift = described["drift_budget"]
    need(
        drift.minimum <= spec.drift_budget <= drift.maximum,
        f"drift_budget must be in [{drift.minimum:g}, {drift.maximum:g}] percent, got {spec.drift_budget:g}",
    )
    need(spec.weight_decay >= 0, "weight_decay must be >= 0")
    need(spec.max_grad_norm > 0, "max_grad_norm must be > 0")
    need(spec.lora_r >= low["lora_r"], f"lora_r must be at least {low['lora_r']}")
    need(spec.lora_alpha >= low["lora_alpha"], f"lora_alpha must be at least {low['lora_alpha']}")
    need(0.0 <= spec.lora_dropout < 1.0, "lora_dropout must be in [0, 1)")
    need(spec.desirable_weight > 0 and spec.undesirable_weight > 0, "KTO weights must be > 0")
    need(spec.logging_steps >= 1, "logging_steps must be at least 1")
    need(spec.save_steps >= 1, "save_steps must be at least 1")
    need(spec.seed >= low["seed"], f"seed must be >= {low['seed']}")
    need(isinstance(spec.report_to, (list, tuple)), f"report_to must be a list of trackers, got {spec.report_to!r}")
    spec.report_to = check_trackers(spec.report_to)
