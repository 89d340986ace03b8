"""What a training run is asked to do: the `RunSpec` dataclass, validated on creation, saved as spec.json.

Owns the method names (dpo, kto, orpo, simpo, reward; `ipo` is DPO with loss_type ipo), the defaults that make
sense on one machine, and the JSON round-trip; the rules a spec is checked against (the loss types each method
accepts, the numbers) are `spec_rules`'. Every field carries a `help` string, its form label, the range offered
(`minimum`/`maximum`, inside what the rules accept), choices and per-method defaults, and where it is exposed:
`cli` (the heading of its `alignstudio train` flag, `alias` an older flag name) and `ui` (its Train tab section,
MAIN or MORE in the "More settings" accordion; `control_id` and `row` place it). The CLI's flags and the tab's
controls are built from these in one loop each (`settings()`), and both turn what was typed into a spec with one
translation (`RunSpec.from_values`). It imports nothing heavy (no torch, no TRL): the UI and the runner read specs
without loading a model.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.models import DEFAULT_MODEL
from ..core.settings import Setting, from_values, setting
from ..core.settings import settings as settings_of
from .spec_rules import DEFAULT_LOSS as DEFAULT_LOSS
from .spec_rules import DPO_LOSS_TYPES as DPO_LOSS_TYPES
from .spec_rules import KTO_LOSS_TYPES as KTO_LOSS_TYPES
from .spec_rules import check_loss, check_numbers
from .trackers import TRACKERS

METHODS = ("dpo", "kto", "orpo", "simpo", "reward")  # reward: a Bradley-Terry reward model (training.reward)
METHOD_ALIASES = {"ipo": ("dpo", ["ipo"])}  # `--method ipo` = DPO with the IPO loss

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
# Methods that train against a frozen reference model (ORPO and SimPO have none).
REFERENCE_METHODS = ("dpo", "kto")
SWEEP_BETAS = (0.01, 0.05, 0.1, 0.2, 0.5)  # a beta sweep's values unless the user lists others
# Where a field is exposed (`setting(cli=..., ui=...)`): the --help heading of its `alignstudio train` flag ("" =
# the command's own flags), and the Train tab's form section ("main", or "more" in the "More settings" accordion).
OWN, TRAINING, HELDOUT = "", "training settings", "held-out labels"
MAIN, MORE = "main", "more"


@dataclass
class RunSpec:
    """One training run. Invalid values raise `UserError` naming the field."""

    # -- what to train ---------------------------------------------------------------------------
    method: str = setting(
        "dpo",
        "Training method: dpo, kto, orpo, simpo or reward (a Bradley-Terry reward model); "
        "ipo = dpo with loss_type ipo.",
        label="Method",
        cli=OWN,
        ui=MAIN,
    )
    model: str = setting(
        DEFAULT_MODEL,
        "Base model: a registry name ('smollm2', a trained version), a run folder or a "
        "local checkpoint folder. An adapter continues training from its weights.",
        label="Base model",
        cli=OWN,
        ui=MAIN,
    )
    data: str = setting(
        "",
        "Training data: a JSONL/Parquet file or a datasets snapshot folder. DPO/ORPO/SimPO "
        "need prompt/chosen/rejected; KTO takes prompt/completion/label (pairs are unpaired).",
        cli=OWN,
        ui=MAIN,  # the tab picks a snapshot or a file
    )

    # -- the loss ----------------------------------------------------------------------------------
    loss_type: list[str] | None = setting(
        None,
        "Loss type(s). DPO: sigmoid, ipo, hinge, robust, ... and lists such "
        "as ['sigmoid', 'sft'] (an SFT term, RPO). KTO: kto or "
        "apo_zero_unpaired. Empty = the method's default.",
        label="Loss type",
        info="DPO: add 'sft' for an SFT term; ipo/robust for noisy labels",
        cli=TRAINING,
        ui=MAIN,
    )
    loss_weights: list[float] | None = setting(
        None,
        "Weights for a list of DPO loss types (same length); default 1.0 each.",
        label="Loss weights (comma-separated)",
        empty="1.0 each",
        cli=TRAINING,
        ui=MORE,
    )
    beta: float = setting(
        0.1,
        "How far the model may move from the reference: higher = more conservative. DPO "
        "typically 0.1-0.2; for IPO it is tau; for ORPO the odds-ratio weight (lambda); SimPO "
        "usually wants about 2.0.",
        label="beta",
        info="How far the model may move from the reference: higher = more conservative.",
        minimum=0.0001,
        step=0.01,
        per_method={"simpo": 2.0},
        cli=TRAINING,
        ui=MAIN,
        row="beta-lr",
    )
    label_smoothing: float = setting(
        0.0,
        "Probability that a label is flipped (robust DPO, EXO, SimPO), in [0, 0.5).",
        label="Label smoothing (robust/EXO/SimPO)",
        minimum=0.0,
        maximum=0.49,
        cli=TRAINING,
        ui=MORE,
        row="loss",
    )
    simpo_gamma: float = setting(
        0.5, "SimPO target reward margin (gamma).", label="SimPO gamma", cli=TRAINING, ui=MORE, row="loss"
    )
    desirable_weight: float = setting(
        1.0,
        "KTO: weight of desirable (thumbs-up) examples.",
        label="KTO desirable weight",
        cli=TRAINING,
        ui=MORE,
        row="kto",
    )
    undesirable_weight: float = setting(
        1.0,
        "KTO: weight of undesirable (thumbs-down) examples.",
        label="KTO undesirable weight",
        cli=TRAINING,
        ui=MORE,
        row="kto",
    )

    # -- optimisation ------------------------------------------------------------------------------
    learning_rate: float | None = setting(
        None,
        "Peak learning rate. Empty = chosen from the method and LoRA vs full "
        "fine-tuning (LoRA 1e-4 to 2e-4, full 1e-6 to 8e-6); see the run card.",
        label="Learning rate (empty = chosen from the data)",
        empty="chosen from the data",
        zero_is_empty=True,
        cli=TRAINING,
        alias="--lr",
        ui=MAIN,
        control_id="lr",
        row="beta-lr",
    )
    num_train_epochs: float | None = setting(
        None,
        "Passes over the data (ignored when max_steps is set). Empty = chosen "
        "from the data size: about 60 updates on a small set, at most 8 "
        "epochs; one epoch on a large one.",
        label="Epochs (empty = chosen from the data)",
        empty="chosen from the data",
        zero_is_empty=True,
        cli=TRAINING,
        alias="--epochs",
        ui=MAIN,
        control_id="epochs",
        row="length",
    )
    max_steps: int | None = setting(
        None,
        "Stop after this many optimizer steps (overrides epochs).",
        label="Max steps (empty = epochs)",
        empty="from the epochs",
        cli=TRAINING,
        ui=MAIN,
        row="length",
    )
    batch_size: int | None = setting(
        None,
        "Examples per device per step (KTO needs at least 2). Empty = 4, or 2 below 32 training rows.",
        label="Batch size (empty = chosen)",
        empty="chosen",
        zero_is_empty=True,
        cli=TRAINING,
        ui=MAIN,
        row="batch",
    )
    grad_accum: int = setting(
        1,
        "Gradient accumulation steps (effective batch = batch_size x grad_accum x devices).",
        label="Grad accumulation",
        minimum=1,
        cli=TRAINING,
        ui=MAIN,
        row="batch",
    )
    max_length: int = setting(
        512,
        "Maximum tokens of prompt + completion; longer examples are truncated.",
        label="Max length (tokens)",
        minimum=16,
        cli=TRAINING,
        ui=MAIN,
        row="machine",
    )
    lr_scheduler: str = setting(
        "linear",
        "Learning-rate schedule: linear, cosine, constant or constant_with_warmup.",
        label="Learning-rate schedule",
        choices=SCHEDULERS,
        cli=TRAINING,
        ui=MORE,
        row="schedule",
    )
    warmup_steps: int | None = setting(
        None,
        "Linear warm-up steps. Empty = a tenth of the steps.",
        label="Warm-up steps (empty = a tenth)",
        empty="a tenth of the steps",
        minimum=0,
        cli=TRAINING,
        ui=MORE,
        row="schedule",
    )
    weight_decay: float = setting(
        0.0, "AdamW weight decay.", label="Weight decay", minimum=0.0, cli=TRAINING, ui=MORE, row="optimizer"
    )
    max_grad_norm: float = setting(
        1.0, "Gradient clipping norm.", label="Max grad norm", cli=TRAINING, ui=MORE, row="optimizer"
    )
    seed: int = setting(
        42,
        "Random seed (data order, LoRA initialisation, dropout).",
        label="Seed",
        minimum=0,
        cli=TRAINING,
        ui=MAIN,
        row="machine",
    )

    # -- held-out labels -----------------------------------------------------------------------
    heldout_fraction: float = setting(
        0.2,
        "Share of the labels held out by prompt (no prompt on both sides) to measure "
        "held-out loss, reward accuracy and margin during training; 0 = off. Below "
        "20 rows there is no split.",
        label="Held-out share of the labels (0 = off)",
        info="split by prompt",
        minimum=0.0,
        maximum=0.5,
        cli=HELDOUT,
        ui=MORE,
        control_id="heldout",
        row="heldout",
    )
    early_stopping: bool = setting(
        True,
        "Stop when the held-out loss has not improved for `patience` evaluations, "
        "and keep the checkpoint with the best held-out loss (needs the split).",
        label="Early stopping, keep the best held-out checkpoint",
        cli=HELDOUT,
        ui=MORE,
        row="heldout",
    )
    patience: int = setting(
        3,
        "Held-out evaluations without improvement before early stopping.",
        label="Patience (evaluations)",
        minimum=1,
        cli=HELDOUT,
        ui=MORE,
        row="compare",
    )
    compare_prompts: int = setting(
        3,
        "When the run ends, this many held-out prompts are answered by the base and the "
        "trained model side by side (same seeds); 0 = off.",
        label="Side-by-side prompts at the end (0 = off)",
        minimum=0,
        maximum=20,
        cli=HELDOUT,
        ui=MORE,
        row="compare",
    )

    # -- parameters that train ---------------------------------------------------------------------
    full: bool = setting(
        False,
        "Full fine-tuning instead of LoRA (DPO/KTO keep an explicit frozen reference copy).",
        label="Full fine-tuning (instead of LoRA)",
        cli=TRAINING,
        ui=MORE,
    )
    lora_r: int = setting(
        16, "LoRA rank (adapter size; 8-64 typical).", label="LoRA r", minimum=1, cli=TRAINING, ui=MORE, row="lora"
    )
    lora_alpha: int = setting(
        32, "LoRA alpha (scale = alpha / r).", label="LoRA alpha", minimum=1, cli=TRAINING, ui=MORE, row="lora"
    )
    lora_dropout: float = setting(
        0.05, "LoRA dropout.", label="LoRA dropout", minimum=0.0, maximum=0.9, cli=TRAINING, ui=MORE, row="lora"
    )
    lora_target_modules: list[str] | None = setting(
        None,
        "Modules LoRA adapts; empty = q/k/v/o/gate/up/down_proj for llama-like models, otherwise every linear layer.",
        label="LoRA target modules (comma-separated)",
        empty="chosen for the model",
        cli=TRAINING,
        ui=MORE,
    )

    # -- machine -----------------------------------------------------------------------------------
    precision: str = setting(
        "auto",
        "auto (bf16 autocast over float32 weights where the CPU or GPU runs bf16 natively, "
        "else fp32 on CPU and fp16 on GPU), fp32, bf16 or fp16.",
        label="Precision",
        choices=PRECISIONS,
        cli=TRAINING,
        ui=MORE,
        row="precision",
    )
    gradient_checkpointing: bool = setting(
        False,
        "Recompute activations to save memory (slower; useful on GPUs).",
        label="Gradient checkpointing",
        cli=TRAINING,
        ui=MORE,
        row="precision",
    )
    precompute_ref_log_probs: bool = setting(
        True,
        "DPO/KTO: compute the reference log-probs once before training "
        "instead of a reference forward per step (one process; several compute per step).",
        label="Precompute reference log-probs",
        cli=TRAINING,
        ui=MORE,
        row="precision",
    )

    # -- run folder --------------------------------------------------------------------------------
    logging_steps: int = setting(
        1,
        "Write a metrics line every N steps.",
        label="Log every N steps",
        minimum=1,
        cli=TRAINING,
        ui=MORE,
        row="steps",
    )
    save_steps: int = setting(
        50,
        "Save a checkpoint every N steps (the last 2 are kept).",
        label="Checkpoint every N steps",
        minimum=1,
        cli=TRAINING,
        ui=MORE,
        row="steps",
    )
    register_as: str | None = setting(
        None,
        "Model version name for the trained model (default: the run's name).",
        label="Register the model as (empty = the run's name)",
        empty="the run's name",
        cli=TRAINING,
        ui=MORE,
    )
    report_to: list[str] = setting(
        [],
        "Experiment trackers: tensorboard (event files in the run folder), wandb, mlflow "
        "or trackio; several allowed; empty or 'none' = none. Keys come from the "
        "environment only.",
        label="Experiment trackers",
        choices=tuple(TRACKERS),
        info="TensorBoard writes into the run folder; W&B, MLflow and Trackio need their "
        "package and read keys from the environment",
        cli=TRAINING,
        ui=MORE,
    )

    def __post_init__(self) -> None:
        self.method = str(self.method or "").strip().lower()
        if self.method in METHOD_ALIASES:
            method, loss = METHOD_ALIASES[self.method]
            if self.loss_type and list(self.loss_type) != loss:
                raise UserError(
                    f"method {self.method!r} means DPO with loss_type {loss}; "
                    f"use method 'dpo' for loss_type {self.loss_type}"
                )
            self.method, self.loss_type = method, list(loss)
        if self.method not in METHODS:
            raise UserError(f"method must be one of {', '.join(METHODS + tuple(METHOD_ALIASES))}, not {self.method!r}")
        check_loss(self)
        check_numbers(self)
        if not str(self.model or "").strip():
            raise UserError("model: no base model given")
        if not str(self.data or "").strip():
            raise UserError("data: no training data given (a file or a snapshot folder)")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.lr_scheduler not in SCHEDULERS:
            raise UserError(f"lr_scheduler must be one of {', '.join(SCHEDULERS)}, not {self.lr_scheduler!r}")
        if self.lora_target_modules is not None:
            if isinstance(self.lora_target_modules, str):
                self.lora_target_modules = [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]
            self.lora_target_modules = list(self.lora_target_modules) or None
        if self.register_as is not None and not str(self.register_as).strip():
            self.register_as = None

    # -- derived -----------------------------------------------------------------------------------
    @property
    def uses_reference(self) -> bool:
        return self.method in REFERENCE_METHODS

    @property
    def label(self) -> str:
        """Short description for lists: 'dpo[sigmoid] beta=0.1 lora'."""
        loss = "" if self.method in ("orpo", "simpo", "reward") else f"[{'+'.join(self.loss_type)}]"
        return f"{self.method}{loss} beta={self.beta:g} {'full' if self.full else 'lora'}"

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        if not isinstance(data, dict):
            raise UserError(f"a run spec must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown run setting(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"run spec is not valid JSON ({exc.msg})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "RunSpec":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path} does not exist")
        return cls.from_json(path.read_text(encoding="utf-8"))

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)

    @classmethod
    def help(cls, name: str) -> str:
        return settings()[name].help

    @classmethod
    def default(cls, name: str, method: str | None = None) -> Any:
        """A field's default, or its default for `method` where that differs (SimPO's beta)."""
        return settings()[name].default_for(method)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "RunSpec":
        """What a person typed (a form, the command line) as a validated spec. Empty (None, '', 'auto' for a
        field that may be empty) means the field's default, except for required text such as the model, which
        the spec then refuses; numbers may come as text; list fields take comma-separated text; a field marked
        `zero_is_empty` reads 0 as empty (what an API client sends for an empty box)."""
        return from_values(cls, dict(values), noun="run")


def settings() -> dict[str, Setting]:
    """{field name: Setting} for every RunSpec field, in declaration order."""
    return settings_of(RunSpec)


def field_help() -> dict[str, str]:
    """{field name: help} for every RunSpec field, in declaration order."""
    return {name: s.help for name, s in settings().items()}
