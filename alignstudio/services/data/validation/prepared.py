"""The rows prepared once for every check: forms, texts, identities, KTO labels and what makes a row malformed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from alignstudio.core.conversation import (
    as_messages,
    conversation_problems,
    is_conversational,
    text_of,
)


@dataclass
class _Data:
    kind: str
    form: str  # "conversational" | "plain"
    n: int
    prompts: list  # raw values
    prompt_text: list[str]
    prompt_keys: list[str]  # identity of each prompt (see _key)
    completions: dict[str, list]  # "chosen"/"rejected" or "completion" -> raw values
    texts: dict[str, list[str]]  # same names -> text
    label: np.ndarray | None  # KTO: bool per row (False where the label is invalid)
    label_ok: np.ndarray | None  # KTO: the label is a real boolean
    problems: dict[int, list[str]]  # row -> what makes it malformed
    unusable: np.ndarray  # rows an error-level check has ruled out


def _is_bool_label(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_)) or (type(value) is int and value in (0, 1))


def _key(value: Any) -> str:
    """A hashable identity for a prompt/completion in either form (roles count in conversations)."""
    if type(value) is str:
        return value
    try:
        return "\x1f".join(f"{m.get('role')}\x1d{m.get('content')}" for m in as_messages(value))
    except (TypeError, AttributeError):
        return repr(value)


def _prepare(rows: list[Mapping], kind: str) -> _Data:
    names = ("chosen", "rejected") if kind == "dpo" else ("completion",)
    n = len(rows)
    prompts = [r.get("prompt") for r in rows]
    completions = {name: [r.get(name) for r in rows] for name in names}
    # TRL reads the form from the first example; so do we.
    first = next((p for p in prompts if isinstance(p, str) or is_conversational(p)), None)
    conversational = first is not None and not isinstance(first, str)

    problems: dict[int, list[str]] = {}
    for i, values in enumerate(zip(prompts, *completions.values())):
        if all(type(v) is str for v in values):  # fast path: a plain row
            if conversational:
                problems[i] = ["row is plain text but the dataset is conversational (TRL reads the form from row 0)"]
            continue
        found: list[str] = []
        for name, completion in zip(names, values[1:]):
            found += [p for p in conversation_problems(values[0], completion, completion_name=name) if p not in found]
        if not found and not conversational:  # both sides are message lists here
            found.append("row is conversational but the dataset is plain text (TRL reads the form from row 0)")
        if found:
            problems[i] = found

    label = label_ok = None
    if kind == "kto":
        raw = [r.get("label") for r in rows]
        label_ok = np.fromiter(map(_is_bool_label, raw), dtype=bool, count=n)
        label = np.fromiter((bool(v) and ok for v, ok in zip(raw, label_ok)), dtype=bool, count=n)
        for i in np.flatnonzero(~label_ok):
            problems.setdefault(int(i), []).append(f"label is {raw[i]!r}; it must be true or false")

    def texts_of(values: list) -> list[str]:
        return [v if type(v) is str else text_of(v) for v in values]

    unusable = np.zeros(n, dtype=bool)
    unusable[list(problems)] = True
    return _Data(
        kind,
        "conversational" if conversational else "plain",
        n,
        prompts,
        texts_of(prompts),
        [_key(p) for p in prompts],
        completions,
        {k: texts_of(v) for k, v in completions.items()},
        label,
        label_ok,
        problems,
        unusable,
    )


def _word_counts(texts: list[str]) -> np.ndarray:
    return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
