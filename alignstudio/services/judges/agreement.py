"""How far each AI judge can be trusted: agreement with the humans, and its biases next to theirs.

Per rater (the humans together, and each `judge:NAME` source): labels, pairs shared with the human consensus,
percent agreement and Cohen's kappa (`services.validation.cohen_kappa`), the position bias (for judges, the flip
rate when the order is swapped, from the judgment log; for both, how often the response shown first/left won
a decisive verdict), and how often the longer answer won. The human consensus of a pair is the unique most
frequent verdict of its human annotators (each annotator's latest label); "both bad" counts as a tie, since a
judge has no such verdict.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ...core.store import Store
from .protocol import JudgeCache

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["rater", "labels", "shared with humans", "agreement", "kappa", "flip rate on swap",
           "first/left position won", "longer answer won"]


def _verdict(value: str) -> str:
    return "tie" if value == "both_bad" else value


def human_consensus(rows: list[dict]) -> dict[str, str]:
    latest: dict[str, dict[str, str]] = defaultdict(dict)
    for row in rows:
        if row["source"] == "human":
            latest[row["pair_id"]][row["annotator"]] = _verdict(row["verdict"])
    consensus = {}
    for pair_id, votes in latest.items():
        top = Counter(votes.values()).most_common(2)
        if len(top) == 1 or top[0][1] > top[1][1]:
            consensus[pair_id] = top[0][0]
    return consensus


def _judge_verdicts(rows: list[dict], source: str) -> dict[str, str]:
    """pair_id -> the judge's latest verdict on it."""
    return {row["pair_id"]: _verdict(row["verdict"]) for row in rows if row["source"] == source}


@dataclass(frozen=True)
class Agreement:
    """A rater against the human consensus: pairs both labeled, percent agreement and Cohen's kappa."""

    shared: int
    agreement: float | None
    kappa: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def compare(consensus: dict[str, str], verdicts: dict[str, str]) -> Agreement:
    from ..data.validation import cohen_kappa  # here, not at the top: data.validation loads pandas and scipy,
    # which the CLI's judge commands would otherwise pay for before parsing their flags

    shared = sorted(set(consensus) & set(verdicts))
    judge = [verdicts[p] for p in shared]
    human = [consensus[p] for p in shared]
    kappa = cohen_kappa(judge, human) if shared else None
    agreement = sum(a == b for a, b in zip(judge, human)) / len(shared) if shared else None
    return Agreement(len(shared), None if agreement is None else round(agreement, 4),
                     None if kappa is None else round(kappa, 4))


def judge_vs_humans(store: Store, source: str) -> Agreement:
    """One judge source against the human consensus."""
    rows = store.preference_rows()
    return compare(human_consensus(rows), _judge_verdicts(rows, source))


def _longer_won(rows: list[dict]) -> float | None:
    wins = []
    for row in rows:
        if row["verdict"] not in ("A", "B"):
            continue
        len_a, len_b = len(row["text_a"].split()), len(row["text_b"].split())
        if len_a != len_b:
            wins.append((row["verdict"] == "A") == (len_a > len_b))
    return round(sum(wins) / len(wins), 4) if wins else None


def _left_won(rows: list[dict]) -> float | None:
    decisive = [row for row in rows if row["verdict"] in ("A", "B") and row["shown_left"] in ("A", "B")]
    return round(sum(r["verdict"] == r["shown_left"] for r in decisive) / len(decisive), 4) if decisive else None


def judgment_biases(judgments: list[dict]) -> dict:
    """Flip rate (both orders decisive and contradicting) and first-position rate from the judgment log."""
    both = [j for j in judgments if j["first"] is not None and j["second"] is not None]
    flips = sum(j["first"] in ("A", "B") and j["second"] in ("A", "B") and j["first"] != j["second"] for j in both)
    first_pos = [j["first"] == "A" for j in both if j["first"] in ("A", "B")]
    first_pos += [j["second"] == "B" for j in both if j["second"] in ("A", "B")]
    return {"judged": len(both), "flip_rate": round(flips / len(both), 4) if both else None,
            "first_position_rate": round(sum(first_pos) / len(first_pos), 4) if first_pos else None}


def agreement_table(store: Store, cache: JudgeCache | None = None) -> pd.DataFrame:
    import pandas as pd

    rows = store.preference_rows()
    consensus = human_consensus(rows)
    human_rows = [r for r in rows if r["source"] == "human"]
    table = [{"rater": "human", "labels": len(human_rows), "shared with humans": None, "agreement": None,
              "kappa": None, "flip rate on swap": None, "first/left position won": _left_won(human_rows),
              "longer answer won": _longer_won(human_rows)}]
    for source in sorted({r["source"] for r in rows if r["source"].startswith("judge:")}):
        mine = [r for r in rows if r["source"] == source]
        stats = compare(consensus, _judge_verdicts(rows, source))
        biases = judgment_biases(cache.judgments(source.split(":", 1)[1])) if cache is not None else {}
        table.append({"rater": source, "labels": len(mine), "shared with humans": stats.shared,
                      "agreement": stats.agreement, "kappa": stats.kappa,
                      "flip rate on swap": biases.get("flip_rate"),
                      "first/left position won": biases.get("first_position_rate"),
                      "longer answer won": _longer_won(mine)})
    return pd.DataFrame(table, columns=COLUMNS)
