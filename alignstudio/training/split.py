"""The held-out split of a run's labels: by prompt, so that no prompt is on both sides.

A model that saw a prompt's pair in training scores that prompt's other pairs too well; splitting by prompt
makes held-out reward accuracy a measure of what carries to new prompts. The split is a pure function of the
rows and a seed (the same data and seed give the same split, on resume too). Below `MIN_ROWS_FOR_SPLIT`
rows, or where there are too few distinct prompts, there is no split and the note says why: a handful of
held-out pairs would say nothing but noise, and the training rows are worth more.
No torch, no datasets: rows are plain dicts with a `prompt` (text or a list of messages).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

MIN_ROWS_FOR_SPLIT = 20  # fewer rows: train on everything, no held-out numbers
MIN_HELDOUT = 6  # never fewer held-out rows than this (accuracy on fewer is noise)
MAX_HELDOUT = 200  # evaluation time stays bounded on large sets
HELDOUT_FRACTION = 0.2


@dataclass
class Split:
    train: list[dict]
    heldout: list[dict]
    note: str  # one line for the card and the log: sizes, or why there is no split
    heldout_prompts: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.heldout)

    def to_dict(self) -> dict:
        return {
            "train_rows": len(self.train),
            "heldout_rows": len(self.heldout),
            "heldout_prompts": len(self.heldout_prompts),
            "note": self.note,
        }


def prompt_key(prompt) -> str:
    """The identity of a prompt: its text, or its messages as canonical JSON (whitespace at the ends ignored)."""
    if isinstance(prompt, str):
        return prompt.strip()
    if isinstance(prompt, list):
        return json.dumps(
            [
                {"role": m.get("role"), "content": str(m.get("content", "")).strip()} if isinstance(m, dict) else m
                for m in prompt
            ],
            sort_keys=True,
            ensure_ascii=False,
        )
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str)


def heldout_size(rows: int, fraction: float = HELDOUT_FRACTION) -> int:
    """How many rows to hold out of `rows` (0 = no split)."""
    if rows < MIN_ROWS_FOR_SPLIT or fraction <= 0:
        return 0
    return min(MAX_HELDOUT, max(MIN_HELDOUT, round(rows * fraction)))


def split_by_prompt(rows: list[dict], fraction: float = HELDOUT_FRACTION, seed: int = 42) -> Split:
    """Hold out whole prompts until about `fraction` of the rows are held out."""
    want = heldout_size(len(rows), fraction)
    if want == 0:
        reason = (
            "held-out split off"
            if fraction <= 0
            else f"no held-out split: {len(rows)} rows, fewer than {MIN_ROWS_FOR_SPLIT}; "
            "all rows train and held-out accuracy cannot be measured (label more pairs)"
        )
        return Split(list(rows), [], reason)
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(prompt_key(row.get("prompt")), []).append(index)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    held: list[str] = []
    count = 0
    for key in keys:
        if count >= want:
            break
        if count + len(groups[key]) > want + max(2, want // 4):
            continue  # a prompt with many pairs would take the held-out side over its size: try smaller ones
        held.append(key)
        count += len(groups[key])
    train_count = len(rows) - count
    if count < MIN_HELDOUT or train_count < MIN_HELDOUT or len(held) == len(keys):
        return Split(
            list(rows),
            [],
            f"no held-out split: {len(rows)} rows over {len(keys)} distinct prompts "
            "cannot be split by prompt (a prompt may not be on both sides)",
        )
    held_set = set(held)
    train = [r for r in rows if prompt_key(r.get("prompt")) not in held_set]
    heldout = [r for r in rows if prompt_key(r.get("prompt")) in held_set]
    note = (
        f"held out {len(heldout)} of {len(rows)} rows ({len(held)} prompts, none of them in training) "
        "for held-out loss, reward accuracy and margin"
    )
    return Split(train, heldout, note, held)
