"""Who agreed with whom: the one rule for the human consensus of a pair and a judge's agreement with it.

The Validate report (`data.validation.labels`), the judges' agreement table and gate (`judges.agreement`,
`judges.bulk`), the judge's trust measurement (`judges.trust`) and the rounds' human pairs all read these, so
every tab shows the same figures for one store. Pure functions of label records (dicts with pair_id,
annotator, source, verdict, oldest first, as `Store.preference_rows` gives them: retracted labels are already
gone); standard library at import (kappa imports scikit-learn when first computed), so a judge command pays
for no pandas or scipy. The per-annotator quality table (`data.annotators`) reads them too.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters over the same items (scikit-learn's `cohen_kappa_score`): their observed
    agreement corrected for the agreement expected by chance from each rater's own category frequencies.

    None when undefined: no items, or both raters always used one and the same category. scikit-learn is
    imported here, on first use, so importing this module stays cheap for a judge command.
    """
    if len(a) == 0 or len(a) != len(b) or len(set(a) | set(b)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    kappa = float(cohen_kappa_score(list(a), list(b)))
    return None if math.isnan(kappa) else kappa


def unique_mode(values: Iterable[str]) -> str | None:
    """The most frequent value when exactly one value is most frequent, else None."""
    top = Counter(values).most_common(2)
    return None if not top or (len(top) > 1 and top[0][1] == top[1][1]) else top[0][0]


def human_votes(records: Iterable[Mapping]) -> dict[str, dict[str, str]]:
    """pair_id -> {annotator: verdict} of the human labels, each annotator's latest (a relabel replaces it)."""
    votes: dict[str, dict[str, str]] = defaultdict(dict)
    for record in records:
        if record["source"] == "human":
            votes[str(record["pair_id"])][str(record["annotator"])] = record["verdict"]
    return dict(votes)


@dataclass(frozen=True)
class PairConsensus:
    """The humans' consensus on one pair: the unique most frequent of their latest verdicts (None when the top
    verdicts tie), the share of annotators who gave it, and how many annotators labeled the pair."""

    verdict: str | None
    agreement: float
    annotators: int

    def kept(self, split: str = "drop") -> bool:
        """Whether the pair keeps its verdict under a campaign's disagreement setting: `drop` keeps only pairs
        whose annotators all agree, `weight` every pair with a majority (its agreement then weighs it); a tie
        has no verdict to keep under either."""
        if self.verdict is None:
            return False
        return self.agreement == 1.0 if split == "drop" else True


def pair_consensus(records: Iterable[Mapping]) -> dict[str, PairConsensus]:
    """pair_id -> the humans' consensus on it (every pair with a human label), the one rule behind
    `human_consensus`, the snapshots' consensus rows and the campaign's agreement figures."""
    consensus = {}
    for pid, votes in human_votes(records).items():
        mode = unique_mode(votes.values())
        share = sum(v == mode for v in votes.values()) / len(votes) if mode is not None else 0.0
        consensus[pid] = PairConsensus(mode, round(share, 4), len(votes))
    return consensus


def human_consensus(records: Iterable[Mapping]) -> dict[str, str]:
    """pair_id -> the humans' verdict on it: the unique most frequent of their latest votes (no entry when the
    top verdicts are tied). "both_bad" is a verdict of its own here, not folded into "tie"."""
    return {pid: c.verdict for pid, c in pair_consensus(records).items() if c.verdict is not None}


def judge_verdicts(records: Iterable[Mapping], source: str) -> dict[str, str]:
    """pair_id -> the latest verdict of one rater source (`judge:NAME`) on it: a judge run again (another
    prompt, a fixed parser) replaces its earlier verdicts."""
    return {str(r["pair_id"]): r["verdict"] for r in records if r["source"] == source}


@dataclass(frozen=True)
class Agreement:
    """A rater against the human consensus: pairs both labeled, percent agreement and Cohen's kappa."""

    shared: int
    agreement: float | None
    kappa: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def compare(consensus: Mapping[str, str], verdicts: Mapping[str, str]) -> Agreement:
    """Agreement of `verdicts` with `consensus` on the pairs both have: a verdict agrees only with the same
    verdict (so "both_bad" agrees only with "both_bad", and "tie" only with "tie")."""
    shared = sorted(set(consensus) & set(verdicts))
    judge = [verdicts[p] for p in shared]
    human = [consensus[p] for p in shared]
    kappa = cohen_kappa(judge, human)
    agreement = sum(a == b for a, b in zip(judge, human)) / len(shared) if shared else None
    return Agreement(
        len(shared), None if agreement is None else round(agreement, 4), None if kappa is None else round(kappa, 4)
    )


def judge_agreement(records: Sequence[Mapping]) -> dict[str, Agreement]:
    """{judge:NAME: its agreement with the humans}, for every judge source among `records`.

    The rule, the one both the Validate report and the judges' agreement table use:
    - the humans' verdict on a pair is the unique most frequent of each human annotator's latest label
      (retracted labels are not in the records; a pair whose top verdicts tie has no consensus and is left out);
    - a judge's verdict on a pair is its latest one: a judge is re-run when its prompt or model changes, and
      the newest run is the judge being measured (a majority over runs would mix old and new judges);
    - "both_bad" stays its own verdict: it says neither answer is acceptable, which is not "equally good", so
      it agrees only with "both_bad"; a judge that cannot say it (the LLM judges answer A, B or tie) is
      counted as disagreeing on those pairs, as the humans' annotator agreement counts it among themselves.
    """
    consensus = human_consensus(records)
    sources = sorted({r["source"] for r in records if str(r["source"]).startswith("judge:")})
    return {source: compare(consensus, judge_verdicts(records, source)) for source in sources}
