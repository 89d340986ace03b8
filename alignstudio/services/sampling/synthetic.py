"""Synthetic preference pairs: one model answering each prompt under two system prompts (say, one asking for a
helpful answer and one for a vague one), with the side named chosen taken as preferred.

Owns the rule that turns such pairs into labels: source `synthetic`, pair origin `synthetic`, the chosen side
stored as A; each generation keeps its system prompt and its original side (a/b) in its params.
Sampling itself is `sampling`'s; exports can leave these labels out (`--exclude-source synthetic`).
"""

from __future__ import annotations

from ...core.errors import UserError
from ...core.store import Store
from .sampler import SampledPair
from .settings import SamplingSettings

SOURCE = "synthetic"
SIDES = ("a", "b")


def check_chosen(settings: SamplingSettings, chosen: str | None) -> None:
    """`chosen` names the side whose system prompt asks for the better answer; both sides need one."""
    if chosen is None:
        return
    if chosen not in SIDES:
        raise UserError(f"--chosen must be a or b, not {chosen!r}")
    if not (settings.system("A") and settings.system("B")):
        raise UserError("--chosen needs both --system-a and --system-b (the pair's two system prompts)")


def labeled_rows(pairs: list[SampledPair], chosen: str) -> list[dict]:
    """Store rows (chosen first) for `Store.import_preferences`, each side's params marked with its side."""
    rows = []
    for pair in pairs:
        sides = {"a": (pair.text_a, pair.model_a, pair.params_a), "b": (pair.text_b, pair.model_b, pair.params_b)}
        win, lose = sides[chosen], sides["b" if chosen == "a" else "a"]
        rows.append(
            {
                "messages": pair.messages,
                "chosen": win[0],
                "rejected": lose[0],
                "model_chosen": win[1],
                "model_rejected": lose[1],
                "params_chosen": win[2] | {"side": chosen},
                "params_rejected": lose[2] | {"side": "b" if chosen == "a" else "a"},
                "rationale": f"synthetic: the system prompt of side {chosen} asks for the better answer",
            }
        )
    return rows


def store_labeled(store: Store, pairs: list[SampledPair], chosen: str, prompt_set: str = "") -> int:
    """All pairs and their labels in one transaction (all or nothing)."""
    return store.import_preferences(labeled_rows(pairs, chosen), source=SOURCE, origin=SOURCE, prompt_set=prompt_set)
