"""How far each AI judge can be trusted: agreement with the humans, and its biases next to theirs.

Per rater (the humans together, and each `judge:NAME` source): labels, pairs shared with the human consensus,
percent agreement and Cohen's kappa (the one rule of `services.consensus.judge_agreement`, which the Validate
report uses too), the position bias (for judges, the flip rate when the order is swapped, from the judgment
log; for both, how often the response shown first/left won a decisive verdict), and how often the longer
answer won.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.store import Store
from ..consensus import Agreement, compare, human_consensus, judge_agreement, judge_verdicts
from .protocol import JudgeCache

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Agreement", "agreement_table", "compare", "human_consensus", "judge_vs_humans", "judgment_biases"]

COLUMNS = [
    "rater",
    "labels",
    "shared with humans",
    "agreement",
    "kappa",
    "flip rate on swap",
    "first/left position won",
    "longer answer won",
]


def judge_vs_humans(store: Store, source: str) -> Agreement:
    """One judge source against the human consensus."""
    rows = store.preference_rows()
    return compare(human_consensus(rows), judge_verdicts(rows, source))


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
    return {
        "judged": len(both),
        "flip_rate": round(flips / len(both), 4) if both else None,
        "first_position_rate": round(sum(first_pos) / len(first_pos), 4) if first_pos else None,
    }


def agreement_table(store: Store, cache: JudgeCache | None = None) -> pd.DataFrame:
    import pandas as pd

    rows = store.preference_rows()
    agreement = judge_agreement(rows)
    human_rows = [r for r in rows if r["source"] == "human"]
    table = [
        {
            "rater": "human",
            "labels": len(human_rows),
            "shared with humans": None,
            "agreement": None,
            "kappa": None,
            "flip rate on swap": None,
            "first/left position won": _left_won(human_rows),
            "longer answer won": _longer_won(human_rows),
        }
    ]
    for source, stats in agreement.items():
        mine = [r for r in rows if r["source"] == source]
        biases = judgment_biases(cache.judgments(source.split(":", 1)[1])) if cache is not None else {}
        table.append(
            {
                "rater": source,
                "labels": len(mine),
                "shared with humans": stats.shared,
                "agreement": stats.agreement,
                "kappa": stats.kappa,
                "flip rate on swap": biases.get("flip_rate"),
                "first/left position won": biases.get("first_position_rate"),
                "longer answer won": _longer_won(mine),
            }
        )
    return pd.DataFrame(table, columns=COLUMNS)
