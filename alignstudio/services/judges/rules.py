"""The seed article's rule-based judge (`score_response`), for smoke tests and offline demos.

A response scores its word count, minus the seed's penalties for refusals ("cannot", "sorry", "as an AI"),
minus a large penalty when it tries to instruct the judge (see `prompt.injection_signals`). It favours longer
answers by design, exactly like the seed's stand-in: never mistake it for a quality judge. It is order-free, so
the swapped-order protocol always finds it consistent.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import Judge, JudgeInput, Usage, Verdict
from .prompt import injection_signals

INJECTION_PENALTY = 1000.0


def score_response(text: str) -> tuple[float, list[str]]:
    """(score, notes) of one response."""
    t = (text or "").lower().strip()
    score = float(len(t.split()))
    notes = [f"{len(t.split())} words"]
    penalty = 3.0 * t.count("cannot") + 2.0 * t.count("sorry") + 2.0 * t.count("as an ai")
    if penalty:
        score -= penalty
        notes.append(f"-{penalty:g} for refusal words")
    signals = injection_signals(text or "")
    if signals:
        score -= INJECTION_PENALTY
        notes.append(f"-{INJECTION_PENALTY:g}: tries to instruct the judge ({', '.join(signals)})")
    return score, notes


class RuleJudge(Judge):
    kind = "rules"
    model = ""
    batch_size = 256

    def __init__(self, criteria: Sequence[str] | None = None, tie_margin: float = 0.5):
        super().__init__(criteria)
        self.tie_margin = float(tie_margin)

    def _settings(self) -> dict:
        return {"tie_margin": self.tie_margin}

    def judge(self, item: JudgeInput) -> Verdict:
        score_a, notes_a = score_response(item.response_a)
        score_b, notes_b = score_response(item.response_b)
        if abs(score_a - score_b) <= self.tie_margin:
            winner = "tie"
        else:
            winner = "A" if score_a > score_b else "B"
        rationale = f"A scores {score_a:g} ({'; '.join(notes_a)}); B scores {score_b:g} ({'; '.join(notes_b)})."
        return Verdict(winner, rationale, usage=Usage(calls=1), scores={"A": score_a, "B": score_b})
