"""The validator's vocabulary: thresholds, findings, the report and its text form."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from alignstudio.core.errors import UserError

SEVERITIES = ("error", "warning", "info")
KINDS = ("dpo", "kto")
TRL_DEFAULT_MAX_LENGTH = 1024  # DPOConfig.max_length and KTOConfig.max_length default (TRL 1.16)
MAX_EXAMPLES = 5
VERDICTS = ("A", "B", "tie", "both_bad")
SIDES = ("A", "B")
_CHUNK = 4096  # rows per tokenizer call: 100k rows of token-id lists at once would be gigabytes of ints


class DataShapeError(UserError, ValueError):
    """Rows whose columns fit neither DPO nor KTO (or a bad `kind`): the input must be fixed."""


@dataclass(frozen=True)
class Thresholds:
    """Where a number becomes a finding. Defaults follow the seed guide and TRL's documentation."""

    # length bias (seed guide): mean-length ratio outside [0.67, 1.5], chosen-longer fraction outside [0.3, 0.7]
    length_ratio_high: float = 1.5
    length_ratio_low: float = 0.67
    chosen_longer_high: float = 0.7
    chosen_longer_low: float = 0.3
    min_rows_for_fraction: int = 20
    # chosen/rejected similarity (rapidfuzz ratio, 0-1)
    very_similar: float = 0.9
    very_different: float = 0.1
    max_very_similar_fraction: float = 0.2
    max_very_different_fraction: float = 0.2
    short_chars: int = 10
    # KTO: desirable_weight * n_desirable / (undesirable_weight * n_undesirable) in [1, 4/3] (KTO paper, eq. 8)
    kto_ratio_low: float = 1.0
    kto_ratio_high: float = 4 / 3
    min_rows_per_class: int = 10
    # labels
    position_low: float = 0.4
    position_high: float = 0.6
    min_decisive_labels: int = 20
    position_p_value: float = 0.05
    min_kappa: float = 0.2  # Landis & Koch: below 0.2 is "slight" agreement, barely better than chance
    min_shared_items: int = 10


@dataclass
class Finding:
    """One problem (or note): which check, how bad, what it means and what to do, how many, where."""

    check: str
    severity: str  # "error" | "warning" | "info"
    message: str
    count: int = 0
    examples: list[int] = field(default_factory=list)  # row indices (0-based), at most 5
    details: list[str] = field(default_factory=list)  # a few concrete lines ("row 4: ...")
    pair_ids: list[str] = field(default_factory=list)  # label checks: pair ids, at most 5

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        self.examples = [int(i) for i in self.examples[:MAX_EXAMPLES]]
        self.details = [str(d) for d in self.details[:MAX_EXAMPLES]]
        self.pair_ids = [str(p) for p in self.pair_ids[:MAX_EXAMPLES]]


@dataclass
class Report:
    kind: str  # "dpo" | "kto" | "unknown" (no rows)
    n_rows: int
    stats: dict[str, Any]
    findings: list[Finding]  # errors first, then warnings, then info

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    @property
    def has_warnings(self) -> bool:
        return any(f.severity == "warning" for f in self.findings)

    def counts(self) -> dict[str, int]:
        counter = Counter(f.severity for f in self.findings)
        return {s: counter.get(s, 0) for s in SEVERITIES}

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def to_dict(self, include_values: bool = True) -> dict[str, Any]:
        """JSON-able dict; include_values=False leaves out the per-row lists in stats."""
        stats = self.stats if include_values else {k: v for k, v in self.stats.items() if not isinstance(v, list)}
        return {
            "kind": self.kind,
            "n_rows": self.n_rows,
            "has_errors": self.has_errors,
            "counts": self.counts(),
            "stats": _jsonable(stats),
            "findings": [asdict(f) for f in self.findings],
        }

    def to_text(self) -> str:
        return _report_text(self)


def _flag(check: str, severity: str, mask: np.ndarray, message: str, details: Sequence[str] = ()) -> Finding:
    """A finding about the rows where `mask` is true."""
    return Finding(
        check, severity, message, int(mask.sum()), np.flatnonzero(mask)[:MAX_EXAMPLES].tolist(), list(details)
    )


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.01 or x == 0 else f"{x:.1%}"


# --- output ------------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _summary_lines(s: dict[str, Any]) -> list[str]:
    lines = []
    if "chosen_mean_words" in s:
        lines.append(
            f"  length      chosen {s['chosen_mean_words']:.1f} words, "
            f"rejected {s['rejected_mean_words']:.1f} "
            f"(ratio {s['length_ratio']:.2f}x); chosen longer in {_pct(s['chosen_longer_fraction'])} of pairs"
        )
    if "desirable_mean_words" in s:
        lines.append(
            f"  length      desirable {s['desirable_mean_words']:.1f} words, "
            f"undesirable {s['undesirable_mean_words']:.1f} (ratio {s['length_ratio']:.2f}x)"
        )
    if "similarity_mean" in s:
        lines.append(
            f"  similarity  mean {s['similarity_mean']:.2f}, median {s['similarity_median']:.2f}; "
            "very similar "
            f"{_pct(s['very_similar_fraction'])}, very different {_pct(s['very_different_fraction'])}"
        )
    if "desirable_count" in s:
        lines.append(
            f"  labels      {s['desirable_count']} desirable, {s['undesirable_count']} undesirable; suggested "
            f"desirable_weight={s['suggested_desirable_weight']}, "
            f"undesirable_weight={s['suggested_undesirable_weight']}"
        )
    if "unique_prompts" in s:
        lines.append(
            f"  prompts     {s['unique_prompts']} unique; {s['duplicate_rows']} duplicate rows, "
            f"{s['near_duplicate_prompt_rows']} near-duplicate prompt rows"
        )
    if "max_length" in s:
        lines.append(
            f"  tokens      longest sequence {s['longest_sequence_tokens']} ({s['token_length_method']}); "
            f"max_length {s['max_length']} ({s['max_length_source']}): {s['truncated_rows']} truncated, "
            f"{s['prompt_too_long_rows']} dropped"
        )
    for source, pb in s.get("position_bias", {}).items():
        lines.append(
            f"  position    {source}: left won {_pct(pb['left_win_rate'])} of {pb['decisive']} decisive "
            f"(p={pb['p_value']:.2g})"
        )
    agreement = s.get("annotator_agreement")
    if agreement and agreement["comparisons"]:
        kappa = "n/a" if agreement["kappa"] is None else f"{agreement['kappa']:.2f}"
        lines.append(
            f"  annotators  {_pct(agreement['percent_agreement'])} agreement, kappa {kappa} over "
            f"{agreement['comparisons']} comparisons"
        )
    for source, ja in s.get("judge_agreement", {}).items():
        if ja["shared"]:
            kappa = "n/a" if ja["kappa"] is None else f"{ja['kappa']:.2f}"
            lines.append(
                f"  judge       {source}: {_pct(ja['agreement'])} agreement with humans, kappa {kappa} "
                f"over {ja['shared']} pairs"
            )
    return lines


def _report_text(report: Report) -> str:
    form = report.stats.get("form")
    head = f"Preference data report: {report.kind.upper()}, {report.n_rows} rows" + (f" ({form})" if form else "")
    lines = [head, "=" * len(head), *_summary_lines(report.stats), ""]
    for f in report.findings:
        lines.append(f"{f.severity.upper():<8}{f.check} ({f.count}): {f.message}")
        if f.examples:
            lines.append(f"        rows: {', '.join(map(str, f.examples))}")
        if f.pair_ids:
            lines.append(f"        pairs: {', '.join(f.pair_ids)}")
        lines += [f"        {detail}" for detail in f.details]
    counts = report.counts()
    if counts["error"]:
        verdict = f"{counts['error']} error(s), {counts['warning']} warning(s): fix the errors before training."
    elif counts["warning"]:
        verdict = f"No errors, {counts['warning']} warning(s): the data trains, but read the warnings first."
    else:
        verdict = "No problems found: the data looks ready for training."
    return "\n".join(lines + ([""] if report.findings else []) + [verdict])
