"""The honest verdict at the end of a run: did the model learn the preference, learn nothing, memorize, diverge?

One plain-words answer for the Train tab, the run card and the CLI's last line, read from the metrics rows
(training rows carry `loss`, `rewards/accuracies`, ...; held-out rows carry the same keys prefixed `eval_`).
With a held-out split the verdict rests on it: held-out preference accuracy with its 95% Wilson interval, and
"learned" only when that interval lies above chance (0.5) at the count of held-out pairs; otherwise "too few
held-out pairs to tell". With a drift budget (`drift.py`), a run whose held-out text's perplexity rose past the
budget "learned, then over-optimized". Without a split it can only say whether the training pairs were fit,
and says that this is all it knows. "Nothing learned" is decided before anything else can sound reassuring: a
run whose loss never left its starting value is never "fine". A reward run is judged by `judge_reward`.
No I/O, no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import fmean

from .diagnostics import DEFAULT_BETA, LN2, expected_first_loss, series
from .generation_check import generation_note

LEARNED, NOTHING, MEMORIZED, DIVERGED, FIT_UNCHECKED, UNKNOWN = (
    "learned",
    "nothing-learned",
    "memorized",
    "diverged",
    "fit-unchecked",
    "unknown",
)
TOO_FEW, OVER_OPTIMIZED, PAIRS_ONLY = "too-few-to-tell", "over-optimized", "pairs-only"
NEAR_START = 0.02  # a loss within this of its start has not moved
ACCURACY_LEARNED = 0.6  # held-out accuracy that counts as learned where the count of pairs is unknown
CONFIDENCE = 0.95  # of the Wilson interval around held-out accuracy
MOST_PAIRS_SUGGESTED = 2000  # the search for "pairs needed" stops here


@dataclass(frozen=True)
class Verdict:
    code: str  # one of the constants above
    headline: str  # one line: the CLI's last line, the tab's banner
    detail: str  # what it rests on and what to do
    heldout_accuracy: float | None = None
    heldout_rows: int | None = None
    best_step: int | None = None
    interval_low: float | None = None  # 95% Wilson interval of the held-out accuracy
    interval_high: float | None = None
    drift: float | None = None  # the kept model's perplexity change on the held-out text (0.02 = +2%)
    drift_peak: float | None = None  # the largest change seen at any held-out evaluation
    drift_budget: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        # words, not emoji: the app's fonts may not carry emoji (they showed as empty boxes)
        tag = {NOTHING: "Stop:", DIVERGED: "Stop:", MEMORIZED: "Warning:", OVER_OPTIMIZED: "Warning:"}.get(self.code)
        return (f"**{tag}** " if tag else "") + f"**{self.headline}** {self.detail}"


def wilson(correct: int, total: int) -> tuple[float, float]:
    """The 95% Wilson score interval of `correct` out of `total` (statsmodels)."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(correct, total, alpha=1 - CONFIDENCE, method="wilson")
    return float(low), float(high)


def beyond_chance(accuracy: float, total: int) -> bool:
    return wilson(round(accuracy * total), total)[0] > 0.5


def pairs_needed(accuracy: float) -> int | None:
    """The fewest held-out pairs at which this accuracy would lie beyond chance (None: not below the cap)."""
    if accuracy <= 0.5:
        return None
    return next((n for n in range(2, MOST_PAIRS_SUGGESTED + 1) if beyond_chance(accuracy, n)), None)


def accuracy_text(accuracy: float, total: int | None, what: str = "held-out preference accuracy") -> str:
    """'held-out preference accuracy 0.83 on 6 held-out pairs (95% interval 0.44-0.97; chance 0.50)'."""
    if not total:
        return f"{what} {accuracy:.2f} (chance 0.50)"
    low, high = wilson(round(accuracy * total), total)
    return f"{what} {accuracy:.2f} on {total} held-out pairs (95% interval {low:.2f}-{high:.2f}; chance 0.50)"


def _interval(accuracy: float | None, total: int | None) -> tuple[float | None, float | None]:
    if accuracy is None or not total:
        return None, None
    low, high = wilson(round(accuracy * total), total)
    return round(low, 4), round(high, 4)


def _too_few(accuracy: float, total: int, text: str, moved: str, extra: str = "") -> tuple[str, str]:
    """(headline, detail) of a held-out accuracy above 0.5 whose interval still reaches chance."""
    needed = pairs_needed(accuracy)
    more = (
        f" At this accuracy about {needed} held-out pairs would settle it (about {5 * needed} labeled pairs "
        "at the default held-out share of 0.2), so label more pairs."
        if needed
        else " Label more pairs."
    )
    return (
        f"Too few held-out pairs to tell: {text}.",
        f"{moved}at {total} pairs an accuracy this high also comes from chance.{more}{extra}",
    )


def _finite(rows: list[dict], key: str) -> list[tuple[int, float]]:
    return [(s, v) for s, v in series(rows, key) if math.isfinite(v)]


def _tail_mean(values: list[float], share: float = 0.25, least: int = 3) -> float:
    k = max(1, min(len(values), max(least, int(len(values) * share))))
    return fmean(values[-k:])


def _pct(value: float) -> str:
    return f"{100 * value:+.1f}%"


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
    drift_budget: float | None = None,
    stopped_on_drift_at: int | None = None,
    generation: dict | None = None,
) -> Verdict:
    """The verdict for a finished run's metrics rows. `best_step` is the kept checkpoint's step (None = the
    best held-out loss, within the drift budget where one is set); `drift_budget` the perplexity rise allowed
    on the held-out text (0.03 = 3%; None or 0 = no budget); `generation` the comparison of base and
    trained answers (`generation_check.compare_generation`)."""
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
    train_acc = [v for _, v in _finite(rows, "rewards/accuracies")]
    late_train = _tail_mean(train_loss)
    if not eval_loss:  # no held-out data: only the training pairs can speak
        return _without_heldout(start, late_train, train_acc)

    by_step_acc = dict(_finite(rows, "eval_rewards/accuracies"))
    drift = dict(_finite(rows, "eval_drift")) if drift_budget else {}
    in_budget = [sv for sv in eval_loss if drift.get(sv[0], 0.0) <= (drift_budget or 0.0)] or eval_loss
    best = min(in_budget, key=lambda sv: sv[1])
    if best_step is not None:
        best = next((sv for sv in eval_loss if sv[0] == best_step), best)
    kept_step, kept_loss = best
    kept_acc = by_step_acc.get(kept_step)
    last_step, last_loss = eval_loss[-1]
    n = heldout_rows or None
    acc_text = (
        accuracy_text(kept_acc, heldout_rows)
        if kept_acc is not None
        else f"held-out loss {kept_loss:.3f}" + (f" on {heldout_rows} held-out pairs" if heldout_rows else "")
    )
    reference = start if method == "dpo" else eval_loss[0][1]
    kept_text = (
        f" The checkpoint of step {kept_step} (best held-out loss{' within the drift budget' if drift else ''}) is "
        "the one kept."
        if kept_step != last_step
        else ""
    )
    stop_text = (
        f" The drift budget ended the run at step {stopped_on_drift_at}."
        if stopped_on_drift_at
        else f" Early stopping ended the run at step {stopped_early_at}."
        if stopped_early_at
        else ""
    )
    over = {s: d for s, d in drift.items() if d > drift_budget} if drift else {}
    figures = dict(
        heldout_accuracy=kept_acc,
        heldout_rows=n,
        best_step=kept_step,
        **dict(zip(("interval_low", "interval_high"), _interval(kept_acc, heldout_rows))),
        drift=drift.get(kept_step),
        drift_peak=max(drift.values()) if drift else None,
        drift_budget=drift_budget or None,
    )
    drift_note = (
        f" Perplexity of the held-out text rose {_pct(max(over.values()))} (the drift budget is "
        f"{_pct(drift_budget)}) by step {max(over, key=over.get)}."
        if over
        else ""
    )

    held_moved = reference - kept_loss
    if held_moved < NEAR_START:  # a held-out accuracy above 0.5 without a lower loss is chance on few pairs
        return Verdict(
            NOTHING,
            f"Nothing learned: held-out loss {kept_loss:.3f} (it starts at {reference:.3f})"
            + (f", {acc_text}." if kept_acc is not None else "."),
            "The model did not learn the preference in a way that carries to new prompts. "
            + (
                "It fit the training pairs only (memorized). "
                if late_train < start - 0.2
                else "Train longer or with a higher learning rate. "
            )
            + "Label more pairs, check that the labels follow one consistent preference."
            + stop_text
            + drift_note,
            **figures,
        )
    if kept_acc is not None and (kept_acc <= 0.5 if heldout_rows else kept_acc < ACCURACY_LEARNED):
        return Verdict(
            NOTHING,
            f"Nothing learned that carries over: {acc_text}.",
            "The held-out loss moved, but the model does not yet pick the preferred answer on new "
            "prompts more often than chance. Label more pairs." + kept_text + stop_text + drift_note,
            **figures,
        )
    if kept_acc is not None and heldout_rows and not beyond_chance(kept_acc, heldout_rows):
        moved = f"The held-out loss moved ({reference:.3f} -> {kept_loss:.3f}), but "
        return Verdict(TOO_FEW, *_too_few(kept_acc, heldout_rows, acc_text, moved, kept_text + drift_note), **figures)
    if over:
        return _over_optimized(acc_text, kept_step, drift, over, drift_budget, stop_text + kept_text, figures)
    memorized = (
        train_acc
        and _tail_mean(train_acc) >= 0.95
        and late_train < 0.1 * max(start, 1e-6) + 0.05
        and last_loss > kept_loss + 0.05
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
            **figures,
        )
    unmoved = generation_note(generation, dict(_finite(rows, "eval_rewards/margins")).get(kept_step))
    if unmoved:
        return Verdict(
            PAIRS_ONLY,
            f"Learned to tell pairs apart, generation barely moved: {acc_text}; but {unmoved}.",
            "The model ranks the labeled pairs but writes much as before. More pairs, more steps or a lower beta "
            "move what it writes further; Evaluate against the base shows it on more prompts." + kept_text + stop_text,
            **figures,
        )
    within = (
        f" Perplexity of the held-out text moved {_pct(drift[kept_step])} (drift budget {_pct(drift_budget)})."
        if kept_step in drift
        else ""
    )
    return Verdict(
        LEARNED,
        f"Learned: {acc_text}, held-out loss {reference:.3f} -> {kept_loss:.3f}.",
        "The model prefers the preferred answers on prompts it never trained on, beyond chance at this count."
        + kept_text
        + stop_text
        + within
        + " Compare its answers with the base model's to see the effect.",
        **figures,
    )


def _without_heldout(start: float, late_train: float, train_acc: list[float]) -> Verdict:
    if start - late_train < NEAR_START and (not train_acc or _tail_mean(train_acc) < 0.6):
        return Verdict(
            NOTHING,
            f"Nothing learned: the training loss is still {late_train:.3f} (it starts at {start:.3f}).",
            "The model did not move. Train longer (more epochs) or with a higher learning rate, or label more pairs.",
        )
    acc = f", training accuracy {_tail_mean(train_acc):.2f}" if train_acc else ""
    return Verdict(
        FIT_UNCHECKED,
        f"Fit the training pairs (loss {start:.3f} -> {late_train:.3f}{acc}); whether it generalizes is unmeasured.",
        "There was no held-out split (too few pairs, or it was turned off), so this says nothing "
        "about new prompts. Label at least 20 pairs to get held-out numbers, or evaluate the "
        "model against the base.",
    )


def _over_optimized(acc_text, kept_step, drift, over, budget, stop, figures) -> Verdict:
    """Drift past the budget: the kept checkpoint within it (learned, then over-optimized), or none was."""
    peak_step = max(over, key=over.get)
    advice = " A higher beta, a lower learning rate or fewer steps keep the model closer to its base."
    kept = drift.get(kept_step)
    if kept is not None and kept <= budget:
        return Verdict(
            OVER_OPTIMIZED,
            f"Learned, then over-optimized: {acc_text} at step {kept_step}, where perplexity of the held-out text "
            f"had moved {_pct(kept)} (budget {_pct(budget)}); by step {peak_step} it had moved "
            f"{_pct(over[peak_step])}.",
            "Training went on trading the base model's behaviour for the preference." + stop + advice,
            **figures,
        )
    return Verdict(
        OVER_OPTIMIZED,
        f"Over-optimized: {acc_text}, but perplexity of the held-out text moved {_pct(over[peak_step])} by step "
        f"{peak_step} (budget {_pct(budget)}); no held-out checkpoint stayed within it.",
        "The model kept is the last one and has drifted from its base."
        + stop
        + advice
        + " Or raise the drift budget if this drift is acceptable.",
        **figures,
    )


def judge_reward(rows: list[dict], accuracy: float | None, pairs: int) -> Verdict:
    """A reward run's verdict: held-out pairwise accuracy of the saved model with its interval; a held-out loss
    that stayed at ln 2 (the loss of scoring both answers alike) is "nothing learned" whatever the accuracy."""
    if accuracy is None or not pairs:
        return Verdict(
            FIT_UNCHECKED,
            "Trained; how well it ranks new pairs is unmeasured (no held-out split).",
            "Label at least 20 pairs to get a held-out measure before using it as a judge.",
        )
    eval_loss = [v for _, v in _finite(rows, "eval_loss")]
    text = accuracy_text(accuracy, pairs, "held-out pairwise accuracy")
    low, high = _interval(accuracy, pairs)
    figures = dict(heldout_accuracy=accuracy, heldout_rows=pairs, interval_low=low, interval_high=high)
    if eval_loss and LN2 - min(eval_loss) < NEAR_START:
        return Verdict(
            NOTHING,
            f"Nothing learned: the held-out loss stayed near ln 2 ({min(eval_loss):.3f}), {text}.",
            "The reward model scores preferred and rejected answers alike on new prompts; its accuracy is "
            "chance. Label more pairs or train longer before using it as a judge.",
            **figures,
        )
    if accuracy <= 0.5:
        return Verdict(NOTHING, f"Nothing learned that carries over: {text}.", "Label more pairs.", **figures)
    if not beyond_chance(accuracy, pairs):
        loss = f"The held-out loss went {eval_loss[0]:.3f} -> {min(eval_loss):.3f}, but " if eval_loss else "But "
        return Verdict(TOO_FEW, *_too_few(accuracy, pairs, text, loss), **figures)
    return Verdict(
        LEARNED,
        f"Learned: {text}.",
        "It ranks the preferred answer higher on prompts it never trained on, beyond chance at this count. "
        "Measure it against people in the Evaluate tab before trusting it as a judge.",
        **figures,
    )


def judge_spec(rows: list[dict], spec, **kw) -> Verdict:
    return judge_run(rows, spec.method, spec.loss_type, spec.beta, spec.label_smoothing, **kw)
