"""Which verdict a snapshot takes for a pair of a campaign with several annotators per pair: their consensus.

A pair belongs to a campaign with overlap above 1 when its prompt set is one, when it is in the labeling queue
and the queue is one, or when it was claimed in one (`core.campaigns`). For those pairs the human labels'
consensus (`services.consensus.pair_consensus`: each annotator's latest verdict, the unique most frequent one)
decides, under the campaign's disagreement setting: `drop` keeps only unanimous pairs, `weight` keeps every
majority with its agreement (the share of annotators who gave it) as the row's `weight`. Every other pair keeps
the snapshots' usual majority of decisive labels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ...core.campaigns import QUEUE
from ...core.label_queue import LabelQueue
from ...core.store import Store
from ..consensus import pair_consensus

TIED = "pairs whose annotators tied (no majority)"
SPLIT = "pairs whose annotators disagreed (disagreements: drop)"
UNDECIDED = "pairs whose annotators' consensus is a tie or both bad"


def consensus_pairs(store: Store) -> dict[str, str]:
    """{pair_id: the disagreement setting} of the pairs in campaigns with more than one annotator per pair."""
    campaigns = LabelQueue(store).campaigns  # the queue's table exists before it is read
    splits = campaigns.consensus_campaigns()
    if not splits:
        return {}
    db = store._conn()
    pairs: dict[str, str] = {}
    marks = ",".join("?" * len(splits))
    for row in db.execute(
        f"SELECT p.id, pr.prompt_set FROM pairs p JOIN prompts pr ON pr.id = p.prompt_id WHERE pr.prompt_set IN"
        f" ({marks})",
        list(splits),
    ):
        pairs[row["id"]] = splits[row["prompt_set"]]
    for row in db.execute(f"SELECT pair_id, campaign FROM pair_claims WHERE campaign IN ({marks})", list(splits)):
        pairs[row["pair_id"]] = splits[row["campaign"]]
    if QUEUE in splits:
        for row in db.execute("SELECT pair_id FROM label_queue"):
            pairs[row["pair_id"]] = splits[QUEUE]
    return pairs


def consensus_decisions(
    store: Store, labels: Sequence[dict], left_out: Counter | None = None
) -> dict[str, tuple[str | None, float]]:
    """{pair_id: (winning side A or B, or None: left out; its agreement)} for the pairs with human labels among
    `labels` that belong to campaigns with several annotators per pair; `left_out` counts the pairs left out."""
    splits = consensus_pairs(store)
    human = [label for label in labels if label["source"] == "human" and label["pair_id"] in splits]
    decisions: dict[str, tuple[str | None, float]] = {}
    for pair_id, consensus in pair_consensus(human).items():
        if consensus.kept(splits[pair_id]) and consensus.verdict in ("A", "B"):
            decisions[pair_id] = (consensus.verdict, consensus.agreement)
            continue
        decisions[pair_id] = (None, consensus.agreement)
        if left_out is not None:
            left_out[
                TIED if consensus.verdict is None else SPLIT if consensus.verdict in ("A", "B") else UNDECIDED
            ] += 1
    return decisions


def with_weights(rows: list[dict]) -> list[dict]:
    """Rows with a `weight` column when any consensus row has one (1.0 for the others, decided as usual); without
    it otherwise, so data without overlap keeps its columns and fingerprint."""
    if not any("weight" in row for row in rows):
        return rows
    return [row if "weight" in row else row | {"weight": 1.0} for row in rows]


LABELS_FILE = "labels.jsonl"  # beside a snapshot's data: every individual pairwise label it read


def label_rows(labels: Sequence[dict]) -> list[dict]:
    """Every individual pairwise label, one row each with its annotator, for the snapshot's `LABELS_FILE`: what
    the consensus was computed from stays in the export."""
    return [
        {
            "event_id": label["event_id"],
            "pair_id": label["pair_id"],
            "annotator": label["annotator"],
            "source": label["source"],
            "verdict": label["verdict"],
            "strength": label["strength"],
            "guidelines": label.get("guidelines"),  # the guidelines version it was given under
            "group_id": label.get("group_id"),  # the ranking it came from
            "shown_left": label["shown_left"],
            "created": label["created"],
            "prompt_set": label["prompt_set"],
            "prompt": label["messages"],
            "response_a": label["text_a"],
            "response_b": label["text_b"],
        }
        for label in labels
    ]
