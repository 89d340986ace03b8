"""Duplicate checks: repeated rows and prompts, conflicting KTO labels, near-duplicate prompts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .prepared import _Data, _key
from .report import Finding, Thresholds, _flag

_PUNCT = re.compile(r"[^\w\s]+")


def normalize_prompt(text: str) -> str:
    """casefold, strip punctuation, collapse whitespace: "What's  AI?" and "whats ai" become the same key."""
    return " ".join(_PUNCT.sub("", text.casefold()).split())


def check_duplicates(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """Exact duplicate rows, repeated prompts, and (KTO) the same completion labelled both ways."""
    completion_keys = {name: [_key(v) for v in values] for name, values in data.completions.items()}
    prompts = pd.Series(data.prompt_keys)
    parts = [data.prompt_keys, *completion_keys.values()]
    if data.kind == "kto":
        parts.append(["1" if x else "0" for x in data.label])
    dup_rows = pd.Series(["\x1e".join(p) for p in zip(*parts)]).duplicated().to_numpy()
    repeat = prompts.duplicated().to_numpy() & ~dup_rows
    n_dup_prompts = int((prompts.value_counts() > 1).sum())
    stats.update(
        unique_prompts=int(prompts.nunique()),
        duplicate_rows=int(dup_rows.sum()),
        duplicate_prompts=n_dup_prompts,
        repeated_prompt_rows=int(repeat.sum()),
    )
    findings = []
    if dup_rows.any():
        findings.append(
            _flag(
                "duplicate_rows",
                "warning",
                dup_rows,
                f"{int(dup_rows.sum())} row(s) repeat an earlier row exactly. Duplicates are trained on twice and can "
                "leak between train and eval splits: drop them.",
            )
        )
    if repeat.any() and data.kind == "dpo":
        findings.append(
            _flag(
                "duplicate_prompts",
                "warning",
                repeat,
                f"{int(repeat.sum())} row(s) reuse a prompt from an earlier row with different responses "
                f"({n_dup_prompts} prompt(s) appear more than once). Fine if you collected several pairs per prompt on "
                "purpose; otherwise dedupe. Either way keep rows that share a prompt in the same split.",
            )
        )
    elif repeat.any():  # KTO rows share prompts by design (a good and a bad completion per prompt)
        findings.append(
            _flag(
                "duplicate_prompts",
                "info",
                repeat,
                f"{int(repeat.sum())} row(s) reuse a prompt from an earlier row (normal for KTO data made from pairs). "
                "Keep rows that share a prompt in the same split.",
            )
        )
    if data.kind == "kto":
        pc = pd.DataFrame(
            {"key": ["\x1e".join(p) for p in zip(data.prompt_keys, completion_keys["completion"])], "label": data.label}
        )[data.label_ok]
        labels_per_key = pc.groupby("key")["label"].nunique()
        conflicted = labels_per_key.index[labels_per_key > 1]
        stats["conflicting_labels"] = len(conflicted)
        if len(conflicted):
            mask = np.zeros(data.n, dtype=bool)
            mask[pc.index[pc["key"].isin(conflicted)].to_numpy()] = True
            findings.append(
                _flag(
                    "conflicting_labels",
                    "warning",
                    mask,
                    f"{len(conflicted)} prompt+completion(s) are labelled both desirable and undesirable "
                    f"({int(mask.sum())} rows). They pull training in opposite directions: settle the label or drop "
                    "them.",
                )
            )
    return findings


def check_near_duplicate_prompts(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """Prompts that differ only in case, spacing or punctuation. Grouping by the normalized text (a hash
    join, no all-pairs comparison) keeps it linear at 100k+ rows."""
    cache: dict[str, str] = {}
    norm = [
        cache[k] if k in cache else cache.setdefault(k, normalize_prompt(t))
        for k, t in zip(data.prompt_keys, data.prompt_text)
    ]
    frame = pd.DataFrame({"raw": pd.factorize(pd.Series(data.prompt_keys))[0], "norm": norm})
    frame = frame[frame["norm"] != ""]
    groups = frame.groupby("norm", sort=False)["raw"]
    variants = groups.transform("nunique")
    near = np.zeros(data.n, dtype=bool)  # rows spelling a prompt differently from its first spelling
    near[frame.index[((variants > 1) & (frame["raw"] != groups.transform("first"))).to_numpy()]] = True
    n_groups = int(frame.loc[variants > 1, "norm"].nunique())
    stats.update(near_duplicate_prompt_rows=int(near.sum()), near_duplicate_prompt_groups=n_groups)
    if not near.any():
        return []
    return [
        _flag(
            "near_duplicate_prompts",
            "warning",
            near,
            f"{int(near.sum())} row(s) have a prompt that differs from another only in case, spacing or punctuation "
            f"({n_groups} group(s)). They are effectively duplicates: merge them, and keep them in the same split.",
        )
    ]
