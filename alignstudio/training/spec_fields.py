"""The settings a training run offers: every `RunSpec` field with its default, `help` string, form label, the
range offered (`minimum`/`maximum`, inside what `spec_rules` accepts), choices and per-method defaults, and where
it is exposed: `cli` (the heading of its `alignstudio train` flag, `alias` an older flag name) and `ui` (its Train
tab section, MAIN or MORE in the "More settings" accordion; `control_id` and `row` place it). The CLI's flags and
the tab's controls are built from these in one loop each. `spec.RunSpec` adds the checks and the JSON round-trip.
Imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.models import DEFAULT_MODEL
from ..core.settings import setting
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
class RunSettings:
    """The fields of one training run (`spec.RunSpec` is the class to use: it checks them)."""

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
        "Held-out evaluations without improvement (or over the drift budget) before the run stops.",
        label="Patience (evaluations)",
        minimum=1,
        cli=HELDOUT,
        ui=MORE,
        row="compare",
    )
    drift_budget: float = setting(
        2.0,
        "Drift budget, in percent: how much the perplexity of the shipped held-out text (the alignment tax "
        "the Evaluate tab measures) may rise over the base model's. Keep-the-best takes the best held-out "
        "loss among checkpoints within it, and "
        "the run stops once drift has exceeded it for `patience` evaluations; 0 = off (needs the split; "
        "not for reward models).",
        label="Drift budget, % perplexity rise (0 = off)",
        info="stops a run that trades the base model's behaviour for the preference",
        minimum=0.0,
        maximum=100.0,
        step=0.5,
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
    group_batches: bool = setting(
        True,
        "DPO/ORPO/SimPO on ranked data (a group_id column): keep each ranking's pairs in one optimizer step "
        "(as InstructGPT did), the rows then read in that order; no effect on data without rankings.",
        label="Keep a ranking's pairs in one step",
        cli=TRAINING,
        ui=MORE,
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
