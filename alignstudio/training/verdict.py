"""The honest verdict at the end of a run: did the model learn the preference, learn nothing, memorize, diverge?

One plain-words answer for the Train tab, the run card and the CLI's last line, read from the metrics rows
(training rows carry `loss`, `rewards/accuracies`, ...; held-out rows carry the same keys prefixed `eval_`).
With a held-out split the verdict rests on it: held-out preference accuracy against chance (0.5) and the
held-out loss against its start. Without one it can only say whether the training pairs were fit, and says
that this is all it knows. "Nothing learned" is decided before anything else can sound reassuring: a run
whose loss never left its starting value is never "fine".
No I/O, no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import fmean

from .diagnostics import DEFAULT_BETA, expected_first_loss, series

LEARNED, NOTHING, MEMORIZED, DIVERGED, FIT_UNCHECKED, UNKNOWN = (
    "learned",
    "nothing-learned",
    "memorized",
    "diverged",
    "fit-unchecked",
    "unknown",
)
NEAR_START = 0.02  # a loss within this of its start has not moved
ACCURACY_LEARNED = 0.6  # held-out preference accuracy that counts as learned (chance is 0.5)


@dataclass(frozen=True)
class Verdict:
    code: str  # one of the constants above
    headline: str  # one line: the CLI's last line, the tab's banner
    detail: str  # what it rests on and what to do
    heldout_accuracy: float | None = None
    heldout_rows: int | None = None
    best_step: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        icon = {LEARNED: "✅", NOTHING: "⛔", DIVERGED: "⛔", MEMORIZED: "⚠️"}.get(self.code, "ℹ️")
        return f"{icon} **{self.headline}** {self.detail}"


def _finite(rows: list[dict], key: str) -> list[tuple[int, float]]:
    return [(s, v) for s, v in series(rows, key) if math.isfinite(v)]


def _tail_mean(values: list[float], share: float = 0.25, least: int = 3) -> float:
    k = max(1, min(len(values), max(least, int(len(values) * share))))
    return fmean(values[-k:])


def judge_run(
    rows: list[dict],
    method: str = "dpo",
    loss_type=("sigmoid",),
    beta: float = DEFAULT_BETA,
    label_smoothing: float = 0.0,
    heldout_rows: int = 0,
    best_step: int | None = None,
    stopped_early_at: int | None = None,
    failed_nan: bool = False,
) -> Verdict:
    """The verdict for a finished run's metrics rows. `best_step` is the kept checkpoint's step (None = last)."""
    train_loss = [v for _, v in _finite(rows, "loss")]
    if failed_nan or any(r.get("loss", 0) is None for r in rows):
        return Verdict(
            DIVERGED,
            "Diverged: the loss became NaN.",
            "The weights are unusable and were not saved. Lower the learning rate 3-10x and check the "
            "data for empty or very long answers.",
        )
    if not train_loss:
        return Verdict(UNKNOWN, "No training steps were logged.", "There is nothing to judge.")
    start = expected_first_loss(method, loss_type, beta, label_smoothing)
    start = train_loss[0] if start is None else start
    if len(train_loss) >= 4 and _tail_mean(train_loss) > max(3 * abs(start), start + 2.0):
        return Verdict(
            DIVERGED,
            f"Diverged: the loss rose from {start:.3f} to {_tail_mean(train_loss):.3f}.",
            "Lower the learning rate 3-10x (and keep max_grad_norm at 1.0).",
        )

    eval_loss = _finite(rows, "eval_loss")
    eval_acc = _finite(rows, "eval_rewards/accuracies")
    train_acc = [v for _, v in _finite(rows, "rewards/accuracies")]
    late_train = _tail_mean(train_loss)
    moved = start - late_train

    if not eval_loss:  # no held-out data: only the training pairs can speak
        if moved < NEAR_START and (not train_acc or _tail_mean(train_acc) < 0.6):
            return Verdict(
                NOTHING,
                f"Nothing learned: the training loss is still {late_train:.3f} (it starts at {start:.3f}).",
                "The model did not move. Train longer (more epochs) or with a higher learning rate, "
                "or label more pairs.",
            )
        acc = f", training accuracy {_tail_mean(train_acc):.2f}" if train_acc else ""
        return Verdict(
            FIT_UNCHECKED,
            f"Fit the training pairs (loss {start:.3f} -> {late_train:.3f}{acc}); "
            "whether it generalizes is unmeasured.",
            "There was no held-out split (too few pairs, or it was turned off), so this says nothing "
            "about new prompts. Label at least 20 pairs to get held-out numbers, or evaluate the "
            "model against the base.",
        )

    by_step_acc = dict(eval_acc)
    first_eval = eval_loss[0][1]
    best = (
        min(eval_loss, key=lambda sv: sv[1])
        if best_step is None
        else next((sv for sv in eval_loss if sv[0] == best_step), min(eval_loss, key=lambda sv: sv[1]))
    )
    kept_step, kept_loss = best
    kept_acc = by_step_acc.get(kept_step)
    last_step, last_loss = eval_loss[-1]
    n = f" on {heldout_rows} held-out pairs" if heldout_rows else ""
    acc_text = (
        f"held-out preference accuracy {kept_acc:.2f}{n} (chance 0.50)"
        if kept_acc is not None
        else f"held-out loss {kept_loss:.3f}{n}"
    )
    reference = start if method == "dpo" else first_eval
    kept_text = (
        f" The checkpoint of step {kept_step} (best held-out loss) is the one kept." if kept_step != last_step else ""
    )
    stop_text = f" Early stopping ended the run at step {stopped_early_at}." if stopped_early_at else ""

    held_moved = reference - kept_loss
    if held_moved < NEAR_START:  # a held-out accuracy above 0.5 without a lower loss is chance on few pairs
        return Verdict(
            NOTHING,
            f"Nothing learned: held-out loss {kept_loss:.3f} (it starts at {reference:.3f})"
            + (f", {acc_text}." if kept_acc is not None else "."),
            (
                "The model did not learn the preference in a way that carries to new prompts. "
                + (
                    "It fit the training pairs only (memorized). "
                    if late_train < start - 0.2
                    else "Train longer or with a higher learning rate. "
                )
                + "Label more pairs, check that the labels follow one consistent preference."
                + stop_text
            ),
            kept_acc,
            heldout_rows or None,
            kept_step,
        )
    memorized = (
        train_acc
        and _tail_mean(train_acc) >= 0.95
        and late_train < 0.1 * max(start, 1e-6) + 0.05
        and last_loss > kept_loss + 0.05
    )
    if kept_acc is not None and kept_acc < ACCURACY_LEARNED:
        return Verdict(
            NOTHING,
            f"Nothing learned that carries over: {acc_text}.",
            "The held-out loss moved, but the model does not yet pick the preferred answer on new "
            "prompts more often than chance. Label more pairs." + kept_text + stop_text,
            kept_acc,
            heldout_rows or None,
            kept_step,
        )
    if memorized:
        return Verdict(
            MEMORIZED,
            f"Learned, then memorized: {acc_text} at step {kept_step}; after that the "
            f"training accuracy reached {_tail_mean(train_acc):.2f} while the held-out loss "
            f"rose to {last_loss:.3f}.",
            "Training went on fitting the training pairs only."
            + kept_text
            + stop_text
            + " More varied pairs, fewer epochs or a higher beta would help.",
            kept_acc,
            heldout_rows or None,
            kept_step,
        )
    return Verdict(
        LEARNED,
        f"Learned: {acc_text}, held-out loss {reference:.3f} -> {kept_loss:.3f}.",
        "The model prefers the preferred answers on prompts it never trained on."
        + kept_text
        + stop_text
        + " Compare its answers with the base model's to see the effect.",
        kept_acc,
        heldout_rows or None,
        kept_step,
    )


def judge_spec(rows: list[dict], spec, **kw) -> Verdict:
    return judge_run(rows, spec.method, spec.loss_type, spec.beta, spec.label_smoothing, **kw)
