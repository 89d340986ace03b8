"""Per-annotator quality: how many labels each person gave, how fast, how often they agree with the others, and
whether they lean to the left side or the longer answer, each figure with the count it rests on.

Reads the human pairwise labels (`Store.preference_rows`: retracted labels are gone) and the one agreement rule
of `services.consensus` (each annotator's latest verdict on a pair; a consensus is the unique most frequent
verdict). Cohen's kappa is scikit-learn's (through `consensus.cohen_kappa`), Fleiss' kappa statsmodels'.

Timing: the store records only when each label was stored, not when its pair was shown, so "seconds per label"
is the median gap between an annotator's consecutive labels, leaving out gaps over `BREAK_SECONDS` (a break).
"""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from ...core.store_events import VERDICTS
from ..consensus import cohen_kappa, compare, human_votes, unique_mode

BREAK_SECONDS = 600.0
TIMING_NOTE = (
    "The store records when each label was stored, not when its pair was shown: seconds per label is the median "
    f"gap between one annotator's consecutive labels, gaps over {BREAK_SECONDS / 60:.0f} minutes left out as breaks."
)
# published human-human agreement on pairwise preferences, for context (issue 34)
ANCHORS = {"AlpacaFarm humans": 0.66, "InstructGPT labelers": 0.726}
ANCHOR_LINE = "Published human-human agreement: about 63-77% (AlpacaFarm about 66%, InstructGPT labelers 72.6%)."


@dataclass(frozen=True)
class AnnotatorQuality:
    """One annotator's figures; each rate is None where its count is 0."""

    annotator: str
    labels: int
    agreement: float | None = None  # with the consensus of the other annotators, on pairs they also labeled
    agreement_n: int = 0
    agreement_kappa: float | None = None
    seconds_per_label: float | None = None  # median gap between consecutive labels (see TIMING_NOTE)
    seconds_n: int = 0
    left_rate: float | None = None  # decisive verdicts for the response shown on the left
    left_n: int = 0
    longer_rate: float | None = None  # decisive verdicts for the longer response (pairs that differ in length)
    longer_n: int = 0


@dataclass(frozen=True)
class PairKappa:
    """Two annotators on the pairs both labeled."""

    a: str
    b: str
    shared: int
    agreement: float | None
    kappa: float | None


@dataclass(frozen=True)
class QualityReport:
    annotators: list[AnnotatorQuality]
    pairs: list[PairKappa] = field(default_factory=list)
    fleiss_kappa: float | None = None
    fleiss_items: int = 0  # pairs labeled by `fleiss_raters` annotators each (Fleiss needs the same number)
    fleiss_raters: int = 0
    campaign: AnnotatorQuality | None = None  # the averages over every human label (annotator "(campaign)")
    own_view: bool = False  # an annotator's view: their own count and agreement only

    def to_dict(self) -> dict:
        return asdict(self)

    def kappas_of(self, name: str) -> str:
        """ "bob 0.45 (n=20); carol 0.30 (n=12)": Cohen's kappa against each other annotator."""
        parts = []
        for p in self.pairs:
            if name in (p.a, p.b):
                other = p.b if p.a == name else p.a
                parts.append(f"{other} {_number(p.kappa)} (n={p.shared})")
        return "; ".join(parts)

    def rows(self) -> list[dict]:
        """The table: one row per annotator, then the campaign's (Fleiss' kappa in its kappa column)."""
        out = []
        for q in self.annotators:
            row = {
                "annotator": q.annotator,
                "labels": q.labels,
                "agreement with the others' consensus": _rate(q.agreement, q.agreement_n),
            }
            if not self.own_view:
                row |= {
                    "kappa with the others' consensus": _number(q.agreement_kappa),
                    "Cohen's kappa with each annotator": self.kappas_of(q.annotator),
                    "seconds per label (median gap)": _seconds(q.seconds_per_label, q.seconds_n),
                    "left chosen": _rate(q.left_rate, q.left_n),
                    "longer chosen": _rate(q.longer_rate, q.longer_n),
                }
            out.append(row)
        if self.campaign is not None and not self.own_view:
            c = self.campaign
            fleiss = f"Fleiss {_number(self.fleiss_kappa)} (n={self.fleiss_items} pairs x {self.fleiss_raters})"
            out.append(
                {
                    "annotator": c.annotator,
                    "labels": c.labels,
                    "agreement with the others' consensus": _rate(c.agreement, c.agreement_n),
                    "kappa with the others' consensus": "",
                    "Cohen's kappa with each annotator": fleiss,
                    "seconds per label (median gap)": _seconds(c.seconds_per_label, c.seconds_n),
                    "left chosen": _rate(c.left_rate, c.left_n),
                    "longer chosen": _rate(c.longer_rate, c.longer_n),
                }
            )
        return out

    def plot_rows(self) -> list[dict]:
        """Agreement with the others' consensus per annotator (percent), the campaign's, and the published anchors
        beside them: the bars of the Data tab's plot."""
        shown = [*self.annotators, *([self.campaign] if self.campaign and not self.own_view else [])]
        rows = [
            {"who": q.annotator, "agreement %": round(100 * q.agreement, 1), "series": "this store"}
            for q in shown
            if q.agreement is not None
        ]
        return rows + [{"who": k, "agreement %": 100 * v, "series": "published"} for k, v in ANCHORS.items()]

    def to_text(self) -> str:
        """The CLI's table, with the timing note and the published anchors."""
        rows = self.rows()
        if not rows:
            return "No human pairwise labels yet."
        columns = list(rows[0])
        widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
        lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
        lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
        lines += ["", ANCHOR_LINE]
        if not self.own_view:
            lines.append(TIMING_NOTE)
        return "\n".join(line.rstrip() for line in lines)


def _rate(value: float | None, n: int) -> str:
    return f"{value:.0%} (n={n})" if value is not None else f"- (n={n})"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(value: float | None, n: int) -> str:
    return f"{value:.0f} s (n={n})" if value is not None else f"- (n={n})"


def _share(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def _gaps(times: Sequence[float]) -> list[float]:
    """Seconds between consecutive labels, breaks left out."""
    return [b - a for a, b in itertools.pairwise(sorted(times)) if 0 <= b - a <= BREAK_SECONDS]


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _words(text: str | None) -> int:
    return len((text or "").split())


def _leanings(labels: Sequence[Mapping]) -> tuple[int, int, int, int]:
    """(left chosen, decisive with sides recorded, longer chosen, decisive whose responses differ in length)."""
    left = left_n = longer = longer_n = 0
    for r in labels:
        if r["verdict"] not in ("A", "B"):
            continue
        if r.get("shown_left") in ("A", "B"):
            left_n += 1
            left += r["verdict"] == r["shown_left"]
        words_a, words_b = _words(r.get("text_a")), _words(r.get("text_b"))
        if words_a != words_b:
            longer_n += 1
            longer += (r["verdict"] == "A") == (words_a > words_b)
    return left, left_n, longer, longer_n


def fleiss(votes: Mapping[str, Mapping[str, str]]) -> tuple[float | None, int, int]:
    """Fleiss' kappa (statsmodels) over the pairs labeled by the most common number (2 or more) of annotators,
    since Fleiss' kappa needs the same number of raters per item: (kappa, pairs, raters per pair)."""
    counts = [len(v) for v in votes.values() if len(v) >= 2]
    if not counts:
        return None, 0, 0
    raters = max(set(counts), key=lambda k: (counts.count(k), k))
    items = [list(v.values()) for v in votes.values() if len(v) == raters]
    if len({x for item in items for x in item}) < 2:
        return None, len(items), raters  # one category used by everyone: kappa is undefined
    import numpy as np
    from statsmodels.stats.inter_rater import fleiss_kappa

    table = np.array([[item.count(v) for v in VERDICTS] for item in items])
    kappa = float(fleiss_kappa(table, method="fleiss"))
    return (None if np.isnan(kappa) else round(kappa, 4)), len(items), raters


def annotator_quality(records: Sequence[Mapping]) -> QualityReport:
    """The report over preference rows (`Store.preference_rows`); only human labels count."""
    human = [r for r in records if r["source"] == "human"]
    votes = human_votes(human)
    by_annotator: dict[str, list[Mapping]] = defaultdict(list)
    for r in human:
        by_annotator[str(r["annotator"])].append(r)
    names = sorted(by_annotator)

    quality, pooled_hits, pooled_n, all_gaps = [], 0, 0, []
    for name in names:
        mine = {pid: v[name] for pid, v in votes.items() if name in v}
        others = {
            pid: mode
            for pid, v in votes.items()
            if name in v and (mode := unique_mode(x for who, x in v.items() if who != name)) is not None
        }
        measured = compare(others, mine)
        pooled_hits += sum(mine[pid] == verdict for pid, verdict in others.items())
        pooled_n += measured.shared
        gaps = _gaps([r["created"] for r in by_annotator[name]])
        all_gaps += gaps
        left, left_n, longer, longer_n = _leanings(by_annotator[name])
        quality.append(
            AnnotatorQuality(
                name,
                len(by_annotator[name]),
                measured.agreement,
                measured.shared,
                measured.kappa,
                _median(gaps),
                len(gaps),
                _share(left, left_n),
                left_n,
                _share(longer, longer_n),
                longer_n,
            )
        )

    pairs = []
    for a, b in itertools.combinations(names, 2):
        shared = [(v[a], v[b]) for v in votes.values() if a in v and b in v]
        if not shared:
            continue
        va, vb = [x for x, _ in shared], [y for _, y in shared]
        kappa = cohen_kappa(va, vb)
        agreement = sum(x == y for x, y in shared) / len(shared)
        pairs.append(PairKappa(a, b, len(shared), round(agreement, 4), None if kappa is None else round(kappa, 4)))

    kappa, items, raters = fleiss(votes)
    left, left_n, longer, longer_n = _leanings(human)
    campaign = AnnotatorQuality(
        "(campaign)",
        len(human),
        _share(pooled_hits, pooled_n),
        pooled_n,
        None,
        _median(all_gaps),
        len(all_gaps),
        _share(left, left_n),
        left_n,
        _share(longer, longer_n),
        longer_n,
    )
    return QualityReport(quality, pairs, kappa, items, raters, campaign if human else None)


def own_view(report: QualityReport, name: str) -> QualityReport:
    """What an annotator may see: their own label count and agreement with the others, nothing of anyone else's
    (no per-annotator kappas, no campaign figures, no other rows)."""
    mine = [
        AnnotatorQuality(q.annotator, q.labels, q.agreement, q.agreement_n)
        for q in report.annotators
        if q.annotator == name
    ]
    return QualityReport(mine or [AnnotatorQuality(name, 0)], own_view=True)  # a new annotator sees their zero
