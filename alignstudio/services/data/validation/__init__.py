"""Preference-data validation: what is wrong with a DPO/KTO dataset (and its labels) before training on it.

This module owns the checks and the report. It reads rows already in memory (the CLI and the app load files
and snapshots) and writes nothing. It knows TRL's data forms and defaults (DPO `prompt`/`chosen`/`rejected`,
KTO `prompt`/`completion`/`label`, conversational or plain, `max_length` 1024) but nothing about Gradio, the
store or training runs.

    report = validate(rows)                                  # kind detected from the columns
    report = validate(rows, tokenizer=tok, max_length=2048, labels=label_records)
    report.has_errors, report.findings, report.stats, report.to_dict(), report.to_text()

Each check is a small function `check_*(data, stats, th) -> list[Finding]` that adds its numbers to `stats`.
Severity "error": TRL would fail, or learn nothing from those rows. "warning": it trains, but the data teaches
something you probably do not want. "info": worth knowing.

Stats (numbers, and per-row lists aligned with the rows, for plots):
    form, usable_rows, prompt_words;
    DPO: chosen_words, rejected_words, chosen/rejected_mean_words, length_ratio, chosen_longer_fraction,
         similarity (0-1 per pair), similarity_mean/median, very_similar_fraction, very_different_fraction;
    KTO: completion_words, desirable/undesirable_words, desirable_count, undesirable_count,
         suggested_desirable_weight, suggested_undesirable_weight, weighted_ratio;
    both: unique_prompts, duplicate_rows, duplicate_prompts, near_duplicate_prompt_rows, ...;
    tokenizer: prompt_tokens, chosen/rejected_tokens (KTO: completion_tokens), sequence_tokens (None for
         rows skipped as unusable), max_length, truncated_rows, prompt_too_long_rows;
    labels: label_records, position_bias, annotator_agreement, judge_agreement.

Speed: one pass over the rows, numpy/pandas for the arithmetic, rapidfuzz's parallel `cpdist` for
similarity, and hashing of normalized text (never all pairs) for near-duplicate prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .duplicates import check_duplicates, check_near_duplicate_prompts, normalize_prompt
from .kto import check_kto_balance, check_kto_length_bias, suggest_kto_weights
from .labels import _row_of_pair, check_labels, cohen_kappa
from .prepared import _prepare
from .report import KINDS, SEVERITIES, DataShapeError, Finding, Report, Thresholds  # noqa: F401 (public)
from .rows import (
    check_empty_and_short,
    check_identical_pairs,
    check_length_bias,
    check_malformed,
    check_nothing_to_train,
    check_similarity,
)
from .tokens import check_truncation

__all__ = [
    "DataShapeError",
    "Finding",
    "Report",
    "Thresholds",
    "cohen_kappa",
    "detect_kind",
    "normalize_prompt",
    "suggest_kto_weights",
    "validate",
]


# --- entry point -------------------------------------------------------------------------------------------


def detect_kind(rows: Sequence[Mapping]) -> str:
    """ "dpo" or "kto" from the columns present; DataShapeError when it is neither (or both)."""
    columns: set[str] = set()
    for row in rows:
        columns.update(row.keys())
    listed = ", ".join(sorted(columns)) or "none"
    is_dpo, is_kto = {"chosen", "rejected"} <= columns, {"completion", "label"} <= columns
    if is_dpo and is_kto:
        raise DataShapeError("rows have both DPO (chosen/rejected) and KTO (completion/label) columns; pass kind")
    if not (is_dpo or is_kto):
        raise DataShapeError(
            f"cannot tell the data kind from the columns ({listed}): "
            "DPO needs prompt, chosen, rejected; KTO needs prompt, completion, label"
        )
    kind = "dpo" if is_dpo else "kto"
    if "prompt" not in columns:
        raise DataShapeError(
            f"{kind.upper()} rows need a 'prompt' column (found: {listed}); for implicit-prompt "
            "data, move the shared start of the conversation into 'prompt' first"
        )
    return kind


def validate(
    rows: list[dict],
    kind: str | None = None,
    *,
    tokenizer: Any = None,
    max_length: int | None = None,
    labels: list[dict] | None = None,
    thresholds: Thresholds = Thresholds(),
) -> Report:
    """Run every check that applies and return the report. Raises DataShapeError (a ValueError) on bad shape.

    tokenizer: a Hugging Face tokenizer; adds token lengths and the truncation check (at `max_length`, or
    TRL's default 1024 when None). labels: pairwise label records, for the label-quality checks.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DataShapeError(f"row {index} is {type(row).__name__}, not a record of columns")
    if kind is not None:
        kind = kind.lower()
        if kind not in KINDS:
            raise DataShapeError(f"kind must be 'dpo' or 'kto', got {kind!r}")
    elif rows:
        kind = detect_kind(rows)
    th, stats, findings = thresholds, {}, []

    if not rows:
        findings.append(Finding("no_rows", "error", "The data has no rows: there is nothing to train on."))
    else:
        data = _prepare(rows, kind)
        stats["form"] = data.form
        checks = [check_malformed, check_empty_and_short]
        if kind == "dpo":
            checks += [check_identical_pairs, check_length_bias, check_similarity]
        else:
            checks += [check_kto_balance, check_kto_length_bias]
        for check in checks + [check_duplicates, check_near_duplicate_prompts]:
            findings += check(data, stats, th)
        findings += check_truncation(data, stats, th, tokenizer=tokenizer, max_length=max_length)
        findings += check_nothing_to_train(data, stats, th)
    if labels is not None:
        findings += check_labels(labels, stats, th, _row_of_pair(rows), kind)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: order[f.severity])  # stable: checks keep their order within a severity
    return Report(kind=kind or "unknown", n_rows=len(rows), stats=stats, findings=findings)
