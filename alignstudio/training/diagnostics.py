"""Reading a run's metrics like an experienced practitioner: pure functions over the metrics rows.

Each check looks at the list of metrics.jsonl rows (dicts with `step`, `loss`, `rewards/*`, `logps/*`, ...)
and returns `Diagnostic`s that say in plain words what the pattern means and what to try (raise beta, add
an SFT term, switch to IPO/robust, train fewer steps). Thresholds follow the seed article's "Key Metrics
Explained": the first loss is ln(2) when policy and reference agree, healthy accuracy ends around
0.65-0.85, above 0.95 is overfitting, chosen and rejected rewards should not drift the same way.
No I/O, no torch: the Train tab, the CLI and the run card all call `diagnose`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import fmean

from .spec import RunSpec

DEFAULT_BETA = RunSpec.default("beta")  # what a run uses unless told otherwise

LN2 = math.log(2)

# Loss types whose first value we can predict when policy == reference (all rewards 0).
_ZERO_REWARD_LOSS = {
    "sigmoid": lambda beta, eps: LN2,
    "robust": lambda beta, eps: LN2,
    "hinge": lambda beta, eps: 1.0,
    "ipo": lambda beta, eps: (1.0 / (2.0 * beta)) ** 2,
    "bco_pair": lambda beta, eps: 2 * LN2,
    "nca_pair": lambda beta, eps: 2 * LN2,
    "apo_zero": lambda beta, eps: 1.0,
    "sigmoid_norm": lambda beta, eps: LN2,
}


@dataclass(frozen=True)
class Diagnostic:
    code: str  # stable id, e.g. "reference-mismatch"
    severity: str  # "error" (the run is broken) | "warning" (look at it) | "info"
    title: str
    meaning: str  # what the pattern means, in plain words
    advice: str  # what to try
    step: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        # words, not emoji: the app's fonts may not carry emoji (they showed as empty boxes)
        tag = {"error": "Error:", "warning": "Warning:"}.get(self.severity, "Note:")
        at = f" (step {self.step})" if self.step is not None else ""
        return f"**{tag} {self.title}**{at} — {self.meaning} *Try:* {self.advice}"


def series(rows: list[dict], key: str) -> list[tuple[int, float]]:
    """(step, value) pairs of a metric, skipping rows without it."""
    out = []
    for row in rows:
        value = row.get(key, "missing")
        if value == "missing":
            continue
        number = float("nan") if value is None else value
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            out.append((int(row.get("step") or 0), float(number)))
    return out


def _values(rows: list[dict], key: str) -> list[float]:
    return [v for _, v in series(rows, key) if math.isfinite(v)]


def expected_first_loss(
    method: str, loss_type=("sigmoid",), beta: float = DEFAULT_BETA, label_smoothing: float = 0.0
) -> float | None:
    """The loss at step 1 when the policy equals its reference, or None where it is not predictable."""
    loss_type = [loss_type] if isinstance(loss_type, str) else list(loss_type or ["sigmoid"])
    if method == "kto":
        return 0.5 if loss_type == ["kto"] else None  # 1 - sigmoid(0) with the default weights
    if method != "dpo" or len(loss_type) != 1 or loss_type[0] not in _ZERO_REWARD_LOSS:
        return None
    return _ZERO_REWARD_LOSS[loss_type[0]](beta, label_smoothing)


# -- the checks ---------------------------------------------------------------------------------------


def check_nan(rows: list[dict]) -> list[Diagnostic]:
    for row in rows:
        for key in ("loss", "grad_norm", "rewards/margins", "rewards/chosen", "rewards/rejected", "kl"):
            if key in row and (row[key] is None or (isinstance(row[key], float) and not math.isfinite(row[key]))):
                return [
                    Diagnostic(
                        "nan",
                        "error",
                        "Training diverged (NaN)",
                        f"'{key}' became NaN or infinite, so the weights are no longer usable; the run was stopped "
                        "and no checkpoint was saved from this point.",
                        "Lower the learning rate (by 3-10x), keep max_grad_norm at 1.0, use fp32 or bf16 rather "
                        "than fp16, and check the data for empty or extremely long answers.",
                        int(row.get("step") or 0),
                    )
                ]
    return []


def check_first_loss(
    rows: list[dict],
    method: str = "dpo",
    loss_type=("sigmoid",),
    beta: float = DEFAULT_BETA,
    label_smoothing: float = 0.0,
    tolerance: float = 0.05,
) -> list[Diagnostic]:
    expected = expected_first_loss(method, loss_type, beta, label_smoothing)
    first = series(rows, "loss")
    if expected is None or not first or first[0][0] > 1:  # only the very first step says it
        return []
    step, value = first[0]
    if not math.isfinite(value) or abs(value - expected) <= max(tolerance, tolerance * abs(expected)):
        return []
    name = "ln(2) ≈ 0.693" if abs(expected - LN2) < 1e-9 else f"{expected:.4g}"
    return [
        Diagnostic(
            "reference-mismatch",
            "error",
            "First loss far from its starting value",
            f"The first loss is {value:.4f}, but a policy that starts equal to its reference gives {name}. The "
            "reference model is not the model being trained: a different checkpoint, a different chat template, "
            "or an adapter that does not start at zero.",
            "Check that the reference is the same SFT model (leave it to the trainer with LoRA), that the "
            "tokenizer and chat template match the model, and that a resumed adapter is the one you meant.",
            step,
        )
    ]


def check_overfitting(
    rows: list[dict], threshold: float = 0.95, window: int = 5, min_points: int = 3
) -> list[Diagnostic]:
    acc = series(rows, "rewards/accuracies")
    recent = [v for _, v in acc[-window:] if math.isfinite(v)]
    if len(recent) < min_points or fmean(recent) <= threshold:
        return []
    return [
        Diagnostic(
            "overfitting",
            "warning",
            "Reward accuracy above 0.95",
            f"The model tells chosen from rejected in {fmean(recent):.0%} of recent pairs. Healthy runs end "
            "around 0.65-0.85; near-perfect accuracy usually means it memorised these pairs (or a surface cue "
            "such as length) rather than learned the preference.",
            "Train fewer steps or epochs (0.5-1 epoch is often best), raise beta, add label smoothing "
            "(robust, 0.1), or get more varied pairs.",
            acc[-1][0],
        )
    ]


def check_same_direction(rows: list[dict], window: int = 3, threshold: float = 0.1) -> list[Diagnostic]:
    chosen, rejected = _values(rows, "rewards/chosen"), _values(rows, "rewards/rejected")
    if len(chosen) < window or len(rejected) < window:
        return []
    c, r = fmean(chosen[-window:]), fmean(rejected[-window:])
    if c * r <= 0 or min(abs(c), abs(r)) < threshold:
        return []
    way = "down" if c < 0 else "up"
    return [
        Diagnostic(
            "same-direction",
            "warning",
            f"Chosen and rejected rewards both drifting {way}",
            f"Recent chosen reward {c:+.3f}, rejected {r:+.3f}: both moved {way} from the reference. The model "
            "is changing its overall behaviour (every answer gets more or less likely) instead of learning to "
            "tell the two apart; healthy runs raise chosen and keep rejected flat or lower.",
            "Raise beta to hold the model near the reference, add an SFT term (loss_type ['sigmoid', 'sft']) "
            "to anchor the chosen answers, or lower the learning rate.",
            int(rows[-1].get("step") or 0),
        )
    ]


def check_margins(rows: list[dict], limit: float = 5.0, growth: float = 3.0, lookback: int = 3) -> list[Diagnostic]:
    margins = series(rows, "rewards/margins")
    finite = [(s, v) for s, v in margins if math.isfinite(v)]
    if not finite:
        return []
    step, last = finite[-1]
    exploding = last > limit
    if not exploding and len(finite) > lookback:
        before = finite[-1 - lookback][1]
        exploding = last > 1.0 and before > 0 and last > growth * before
    if not exploding:
        return []
    return [
        Diagnostic(
            "exploding-margins",
            "warning",
            "Reward margins growing fast",
            f"The chosen-minus-rejected reward margin is {last:.3g} and climbing. The model is pushing the two "
            "answers apart far beyond what the data supports, usually by making rejected answers vanishingly "
            "unlikely; generations tend to degrade.",
            "Raise beta, switch to loss_type ipo (its squared loss has a target margin) or robust, lower the "
            "learning rate, or stop earlier.",
            step,
        )
    ]


def check_displacement(rows: list[dict], min_points: int = 4) -> list[Diagnostic]:
    """Chosen likelihood falling while accuracy rises: 'likelihood displacement'."""
    acc = _values(rows, "rewards/accuracies")
    key = "rewards/chosen" if _values(rows, "rewards/chosen") else "logps/chosen"
    chosen = _values(rows, key)
    if len(acc) < min_points or len(chosen) < min_points:
        return []
    k = max(1, min(len(acc), len(chosen)) // 4)
    acc_early, acc_late = fmean(acc[:k]), fmean(acc[-k:])
    ch_early, ch_late = fmean(chosen[:k]), fmean(chosen[-k:])
    drop = 0.05 if key == "rewards/chosen" else max(1.0, 0.02 * abs(ch_early))
    if not (acc_late > acc_early + 0.1 and ch_late < ch_early - drop):
        return []
    return [
        Diagnostic(
            "likelihood-displacement",
            "warning",
            "Chosen answers getting less likely while accuracy rises",
            f"Accuracy rose from {acc_early:.2f} to {acc_late:.2f}, but the chosen answers' {key} fell from "
            f"{ch_early:.3g} to {ch_late:.3g}. DPO only needs chosen above rejected, so it can lower both and "
            "move probability to answers that are in neither set ('likelihood displacement').",
            "Add an SFT term on the chosen answers (loss_type ['sigmoid', 'sft']), raise beta, or train fewer "
            "steps; check chosen and rejected answers are not near-identical.",
            int(rows[-1].get("step") or 0),
        )
    ]


def check_not_learning(rows: list[dict], min_points: int = 20, floor: float = 0.55) -> list[Diagnostic]:
    acc = _values(rows, "rewards/accuracies")
    if len(acc) < min_points:
        return []
    late = fmean(acc[-max(3, len(acc) // 4) :])
    if late >= floor:
        return []
    return [
        Diagnostic(
            "not-learning",
            "info",
            "Accuracy still near chance",
            f"After {len(acc)} logged steps the reward accuracy is {late:.2f}; the model is not separating "
            "chosen from rejected yet.",
            "Raise the learning rate, lower beta, train longer, or check the labels (swapped or noisy pairs).",
            int(rows[-1].get("step") or 0),
        )
    ]


def check_flat_loss(
    rows: list[dict],
    method: str = "dpo",
    loss_type=("sigmoid",),
    beta: float = DEFAULT_BETA,
    label_smoothing: float = 0.0,
    min_points: int = 5,
    near: float = 0.02,
) -> list[Diagnostic]:
    """The loss has not left its starting value: nothing is being learned (yet)."""
    loss = _values(rows, "loss")
    if len(loss) < min_points:
        return []
    start = expected_first_loss(method, loss_type, beta, label_smoothing)
    start = loss[0] if start is None else start
    late = fmean(loss[-max(2, len(loss) // 4) :])
    if abs(start - late) > near:
        return []
    return [
        Diagnostic(
            "flat-loss",
            "warning",
            "Loss still at its starting value",
            f"After {len(loss)} logged steps the loss is {late:.3f}, where it started ({start:.3f}): the model has "
            "not moved away from the reference, so it has learned nothing from these pairs yet.",
            "Train longer (more epochs), raise the learning rate (LoRA: 1e-4 to 5e-4), or leave both empty so they "
            "are chosen from the data size.",
            int(rows[-1].get("step") or 0),
        )
    ]


def check_memorizing(rows: list[dict], min_points: int = 3) -> list[Diagnostic]:
    """Training accuracy near 1.0 while held-out accuracy falls (or held-out loss climbs): memorizing."""
    train_acc = _values(rows, "rewards/accuracies")
    held = [(s, v) for s, v in series(rows, "eval_loss") if math.isfinite(v)]
    if len(held) < min_points or len(train_acc) < min_points:
        return []
    best_step, best = min(held, key=lambda sv: sv[1])
    last_step, last = held[-1]
    held_acc = dict(series(rows, "eval_rewards/accuracies"))
    acc_fell = (
        held_acc.get(last_step) is not None
        and held_acc.get(best_step) is not None
        and held_acc[last_step] < held_acc[best_step]
    )
    if fmean(train_acc[-3:]) < 0.95 or not (last > best + 0.05 or acc_fell):
        return []
    return [
        Diagnostic(
            "memorizing",
            "warning",
            "Memorizing the training pairs",
            f"Training accuracy is {fmean(train_acc[-3:]):.2f}, but the held-out loss rose from {best:.3f} (step "
            f"{best_step}) to {last:.3f}: the model is learning these particular pairs, not the preference.",
            "Keep the best checkpoint (early stopping does), train fewer epochs, raise beta, or label more varied "
            "pairs.",
            last_step,
        )
    ]


def diagnose(
    rows: list[dict],
    method: str = "dpo",
    loss_type=("sigmoid",),
    beta: float = DEFAULT_BETA,
    label_smoothing: float = 0.0,
) -> list[Diagnostic]:
    """Every diagnostic that applies to these metrics rows, most serious first."""
    if not rows:
        return []
    found = check_nan(rows) + check_first_loss(rows, method, loss_type, beta, label_smoothing)
    found += check_flat_loss(rows, method, loss_type, beta, label_smoothing) + check_memorizing(rows)
    if method in ("dpo", "orpo", "simpo"):
        found += check_overfitting(rows) + check_margins(rows) + check_not_learning(rows)
    if method == "dpo":  # rewards relative to a reference only exist for DPO
        found += check_same_direction(rows) + check_displacement(rows)
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda d: order.get(d.severity, 3))


def diagnose_spec(rows: list[dict], spec) -> list[Diagnostic]:
    """`diagnose` with the settings of a RunSpec."""
    return diagnose(rows, spec.method, spec.loss_type, spec.beta, spec.label_smoothing)
