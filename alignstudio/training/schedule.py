"""The training schedule chosen from the data: learning rate, batch size, epochs, warm-up and evaluation cadence.

A person who labels 20-300 pairs and presses Start training must get a model that moved. The old fixed
defaults (lr 5e-5, one epoch of batch 2) left LoRA DPO at loss ln 2 on 24 pairs: a dozen small steps move a
fresh adapter (its B matrix starts at zero) almost nowhere. What this module picks, and why:

- Learning rate by method and by LoRA vs full fine-tuning. LoRA adapters start at zero and are scaled by
  alpha/r, so they need roughly 10-40x the full-model rate (the PEFT and LoRA-practice range is 1e-4 to 5e-4
  for small models); full fine-tuning keeps the papers' rates (DPO/IPO 5e-7 to 5e-6 on 7B models, a little
  higher for a 135M model), SimPO lower than DPO (its paper's 3e-7 to 1e-6 range, sensitive), ORPO ~8e-6.
- Enough optimizer steps: about `TARGET_STEPS` updates however small the data set, by repeating epochs (at
  most `MAX_EPOCHS`); larger sets train one epoch, the common advice for preference data (more epochs
  overfit). Repeating a small set risks memorizing it, which is why the held-out split, early stopping and
  keep-the-best checkpoint (`eval_steps`, `patience`) come with it.
- Batch 4 pairs once there are enough of them (steadier gradients), else 2; warm-up 10% of the steps.

Measured with `python -m bench effect` (README): the figures and the settings tried are in docs/training.md.
Every value the user sets overrides the choice; the run card records each value with its reason.
Pure arithmetic: no torch, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

TARGET_STEPS = 60  # optimizer steps a small set is repeated up to
MAX_EPOCHS = 8  # never more passes than this over a small set
EVALS_PER_RUN = 12  # held-out evaluations over a run (eval_steps follows)
# (LoRA, full fine-tuning) peak learning rates
LEARNING_RATES = {
    "dpo": (2e-4, 5e-6),
    "ipo": (1e-4, 2e-6),  # IPO's squared loss pushes harder at the same rate
    "kto": (2e-4, 5e-6),
    "orpo": (2e-4, 8e-6),
    "simpo": (1e-4, 1e-6),
    "reward": (1e-4, 1e-5),  # a Bradley-Terry scorer (LoRA + a fresh score head)
}
# A reward model gets the same ~60 updates as the policy methods: on the effect benchmark's concise rule (40
# training pairs, SmolLM2) 2 epochs (20 steps) agreed with the rule on 0.45 of 33 held-out pairs, 6 epochs
# (60 steps) on 0.85 of them (`python -m bench effect --judges --no-policy`); held-out early stopping and
# keep-the-best guard it against memorizing, as for DPO.


@dataclass
class Schedule:
    """The resolved values and, for each, where it came from ("you set it" or the reason it was chosen)."""

    learning_rate: float
    batch_size: int
    num_train_epochs: float
    warmup_steps: int
    eval_steps: int
    steps_per_epoch: int
    total_steps: int
    reasons: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "num_train_epochs": self.num_train_epochs,
            "warmup_steps": self.warmup_steps,
            "eval_steps": self.eval_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "reasons": dict(self.reasons),
        }

    def summary(self) -> str:
        return (
            f"lr {self.learning_rate:g}, batch {self.batch_size}, {self.num_train_epochs:g} epoch(s) = "
            f"{self.total_steps} steps, warm-up {self.warmup_steps}"
        )


def _method_key(method: str, loss_type) -> str:
    return "ipo" if method == "dpo" and list(loss_type or []) == ["ipo"] else method


def choose(spec, train_rows: int, processes: int = 1) -> Schedule:
    """The schedule for `spec` on `train_rows` training rows (after the held-out split; KTO rows after
    unpairing). Fields the spec sets (not None) are kept as they are."""
    reasons: dict[str, str] = {}
    key = _method_key(spec.method, spec.loss_type)
    kind = "full fine-tuning" if spec.full else "LoRA"

    if spec.learning_rate is not None:
        lr, reasons["learning_rate"] = spec.learning_rate, "you set it"
    else:
        lr = LEARNING_RATES[key][1 if spec.full else 0]
        reasons["learning_rate"] = f"{key.upper()} with {kind}"

    if spec.batch_size is not None:
        batch, reasons["batch_size"] = spec.batch_size, "you set it"
    else:
        batch = 4 if train_rows >= 32 else 2
        reasons["batch_size"] = f"{train_rows} training rows: " + (
            "4 per step for steadier gradients" if batch == 4 else "2 per step, a small set"
        )
    per_step = batch * spec.grad_accum * max(1, processes)
    steps_per_epoch = max(1, math.ceil(train_rows / per_step))

    if spec.max_steps is not None:
        epochs, reasons["num_train_epochs"] = float(spec.num_train_epochs or 1.0), "max_steps set: it decides"
        total = spec.max_steps
    elif spec.num_train_epochs is not None:
        epochs, reasons["num_train_epochs"] = spec.num_train_epochs, "you set it"
        total = math.ceil(epochs * steps_per_epoch)
    else:
        epochs = float(min(MAX_EPOCHS, max(1, math.ceil(TARGET_STEPS / steps_per_epoch))))
        total = int(epochs * steps_per_epoch)
        reasons["num_train_epochs"] = (
            f"{steps_per_epoch} steps per epoch: {epochs:g} epoch(s) give {total} updates "
            f"(aim: about {TARGET_STEPS}, at most {MAX_EPOCHS} epochs; held-out early stopping guards against "
            "memorizing)"
            if epochs > 1
            else f"{steps_per_epoch} steps per epoch: one pass is enough"
        )

    if spec.warmup_steps is not None:
        warmup, reasons["warmup_steps"] = spec.warmup_steps, "you set it"
    else:
        warmup = max(0, round(0.1 * total))
        reasons["warmup_steps"] = "10% of the steps"

    eval_steps = max(1, math.ceil(total / EVALS_PER_RUN))
    reasons["eval_steps"] = f"about {EVALS_PER_RUN} held-out evaluations over the run"
    return Schedule(lr, batch, epochs, warmup, eval_steps, steps_per_epoch, total, reasons)
