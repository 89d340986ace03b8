"""Label-quality checks on pairwise label records: position bias, annotator and judge agreement."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from scipy.stats import binomtest

from ...consensus import cohen_kappa, human_consensus, human_votes, judge_agreement, judge_verdicts
from .report import MAX_EXAMPLES, SIDES, VERDICTS, Finding, Thresholds, _pct

__all__ = ["check_labels", "cohen_kappa"]

# --- label quality (pairwise label records from the store) -------------------------------------------------


def _row_of_pair(rows: list[Mapping]) -> dict[str, int]:
    """pair_id -> row index, when rows carry a "pair_id" (or "id") column."""
    out: dict[str, int] = {}
    for index, row in enumerate(rows):
        pid = row.get("pair_id", row.get("id"))
        if pid is not None:
            out.setdefault(str(pid), index)
    return out


def _label_problem(record: Any) -> str | None:
    if not isinstance(record, Mapping):
        return f"is {type(record).__name__}, not a record"
    for key in ("pair_id", "annotator", "source", "verdict"):
        if record.get(key) in (None, ""):
            return f"has no {key}"
    if record["verdict"] not in VERDICTS:
        return f"verdict {record['verdict']!r} is not one of {', '.join(VERDICTS)}"
    source = record["source"]
    if source not in ("human", "arena") and not (isinstance(source, str) and re.fullmatch(r"judge:.+", source)):
        return f"source {source!r} is not human, arena or judge:NAME"
    if record.get("left") is not None and record["left"] not in SIDES:  # None: sides not recorded (a file import)
        return f"left {record.get('left')!r} is not A or B"
    return None


def _examples_for(pair_ids: list[str], row_of_pair: dict[str, int]) -> list[int]:
    return [row_of_pair[p] for p in pair_ids if p in row_of_pair][:MAX_EXAMPLES]


def check_labels(
    labels: list[dict], stats: dict, th: Thresholds, row_of_pair: dict[str, int], kind: str | None = "dpo"
) -> list[Finding]:
    """Malformed label records first (left out of the rest), then position bias and agreement checks. Position
    bias is about which side of a pair was shown left: KTO rows have no sides, so their report has no position
    statistic."""
    good, bad = [], []
    for index, record in enumerate(labels):
        problem = _label_problem(record)
        if problem:
            bad.append(f"label {index} {problem}")
        else:
            good.append(record)
    stats["label_records"] = len(labels)
    findings = []
    if bad:
        findings.append(
            Finding(
                "malformed_labels",
                "warning",
                f"{len(bad)} label record(s) are malformed and were "
                "left out of the label checks: fix them in the store or the import file.",
                len(bad),
                details=bad,
            )
        )
    findings += check_self_contradictions(good, stats, row_of_pair)
    if kind != "kto":
        findings += check_position_bias(good, stats, th)
    findings += check_annotator_agreement(good, stats, th, row_of_pair)
    findings += check_judge_agreement(good, stats, th, row_of_pair)
    return findings


def check_position_bias(labels: list[dict], stats: dict, th: Thresholds) -> list[Finding]:
    """Per source: the fraction of decisive verdicts (A or B) that went to the response shown on the left.
    With randomized sides an unbiased labeller sits near 50%; a binomial test tells bias from noise."""
    left_won: dict[str, list[bool]] = defaultdict(list)
    for record in labels:
        if record["verdict"] in SIDES and record.get("left") in SIDES:
            left_won[record["source"]].append(record["verdict"] == record["left"])
    result, findings = {}, []
    for source in sorted(left_won):
        n, k = len(left_won[source]), sum(left_won[source])
        rate, p_value = k / n, float(binomtest(k, n, 0.5).pvalue)
        result[source] = {"decisive": n, "left_won": k, "left_win_rate": round(rate, 4), "p_value": round(p_value, 6)}
        biased = not th.position_low <= rate <= th.position_high
        if n >= th.min_decisive_labels and biased and p_value < th.position_p_value:
            who = "Human annotators" if source == "human" else f"Source {source}"
            findings.append(
                Finding(
                    "position_bias",
                    "warning",
                    f"{who} picked the response shown on the left in {_pct(rate)} of {n} decisive verdicts (binomial "
                    f"test p={p_value:.2g}). The labels reflect screen position as well as quality: randomize which "
                    "response is shown left, judge both orders, and re-check these labels.",
                    n,
                )
            )
    stats["position_bias"] = result
    return findings


def check_self_contradictions(labels: list[dict], stats: dict, row_of_pair: dict[str, int]) -> list[Finding]:
    """One person (human or arena voter) who gave the same pair different verdicts: both labels stand in the
    store (neither was relabelled or retracted), so training reads both. Each such pair is named with the
    annotator and the verdicts in the order given."""
    given: dict[tuple[str, str], list[str]] = defaultdict(list)
    for record in labels:
        if record["source"] in ("human", "arena"):
            given[(str(record["pair_id"]), str(record["annotator"]))].append(record["verdict"])
    clashes = [(pid, who, verdicts) for (pid, who), verdicts in given.items() if len(set(verdicts)) > 1]
    stats["self_contradictions"] = [
        {"pair_id": pid, "annotator": who, "verdicts": verdicts} for pid, who, verdicts in clashes
    ]
    if not clashes:
        return []
    details = [f"pair {pid}: {who} said {' then '.join(verdicts)}" for pid, who, verdicts in clashes]
    pair_ids = list(dict.fromkeys(pid for pid, _, _ in clashes))
    return [
        Finding(
            "self_contradiction",
            "warning",
            f"{len(clashes)} time(s) the same annotator gave one pair contradictory verdicts, and both labels are "
            "kept: training sees the pair both ways. Keep the verdict meant (relabel or retract the other in the "
            "Data tab).",
            len(clashes),
            _examples_for(pair_ids, row_of_pair),
            details=details,
            pair_ids=pair_ids,
        )
    ]


def check_annotator_agreement(
    labels: list[dict], stats: dict, th: Thresholds, row_of_pair: dict[str, int]
) -> list[Finding]:
    """Humans on pairs several of them labelled: percent agreement over every annotator pair on every shared
    item, and Cohen's kappa per annotator pair (the mean weighted by shared items)."""
    per_pair: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    disagreed: list[str] = []
    multi = 0
    for pid, by_annotator in human_votes(labels).items():
        if len(by_annotator) < 2:
            continue
        multi += 1
        for a, b in itertools.combinations(sorted(by_annotator), 2):
            per_pair[(a, b)][0].append(by_annotator[a])
            per_pair[(a, b)][1].append(by_annotator[b])
        if len(set(by_annotator.values())) > 1:
            disagreed.append(pid)
    pairs, agree, total, weighted, weight = [], 0, 0, 0.0, 0
    for (a, b), (va, vb) in sorted(per_pair.items()):
        same = sum(x == y for x, y in zip(va, vb))
        agree, total = agree + same, total + len(va)
        kappa = cohen_kappa(va, vb) if len(va) >= 2 else None
        pairs.append(
            {
                "annotators": [a, b],
                "shared": len(va),
                "agreement": round(same / len(va), 4),
                "kappa": None if kappa is None else round(kappa, 4),
            }
        )
        if kappa is not None:
            weighted, weight = weighted + kappa * len(va), weight + len(va)
    kappa = weighted / weight if weight else None
    stats["annotator_agreement"] = {
        "items_with_several_labels": multi,
        "comparisons": total,
        "percent_agreement": round(agree / total, 4) if total else None,
        "kappa": None if kappa is None else round(kappa, 4),
        "annotator_pairs": pairs,
    }
    if total < th.min_shared_items or kappa is None or kappa >= th.min_kappa:
        return []
    return [
        Finding(
            "low_annotator_agreement",
            "warning",
            f"Annotators agree on {_pct(agree / total)} of {total} shared judgments (Cohen's kappa {kappa:.2f}; below "
            f"{th.min_kappa} is barely better than chance). Labels this noisy teach little: tighten the labelling "
            "guidelines, review the pairs they disagree on, or drop those pairs.",
            len(disagreed),
            _examples_for(disagreed, row_of_pair),
            pair_ids=disagreed,
        )
    ]


def check_judge_agreement(
    labels: list[dict], stats: dict, th: Thresholds, row_of_pair: dict[str, int]
) -> list[Finding]:
    """Each AI judge against the human consensus on pairs both labelled, by the rule of
    `services.consensus.judge_agreement` (the judges' agreement table in the Evaluate tab uses it too)."""
    result, findings = {}, []
    consensus = human_consensus(labels)
    for source, measured in judge_agreement(labels).items():
        result[source] = measured.to_dict()
        n, kappa, agreement = measured.shared, measured.kappa, measured.agreement
        if n >= th.min_shared_items and kappa is not None and kappa < th.min_kappa:
            verdicts = judge_verdicts(labels, source)
            disagreed = [pid for pid, verdict in verdicts.items() if pid in consensus and verdict != consensus[pid]]
            findings.append(
                Finding(
                    "low_judge_agreement",
                    "warning",
                    f"{source} agrees with the human verdict on {_pct(agreement)} of {n} pairs (Cohen's kappa "
                    f"{kappa:.2f}; below {th.min_kappa} is barely better than chance). Its labels would teach the "
                    "judge's taste, not your annotators': fix the judge prompt or model, or rely on human labels.",
                    len(disagreed),
                    _examples_for(disagreed, row_of_pair),
                    pair_ids=disagreed,
                )
            )
    stats["judge_agreement"] = result
    return findings
