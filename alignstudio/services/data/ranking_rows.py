"""What rankings add to the training rows: the group id column of DPO rows, and KTO's top and bottom answers."""

from __future__ import annotations

from collections.abc import Callable

from ...core.store import Store


def with_groups(rows: list[dict]) -> list[dict]:
    """DPO rows with their `group_id` column (the ranking each pair comes from, None for a plain pair) when any
    row has one; without the column otherwise, so data without rankings keeps its columns and fingerprint."""
    if any(row.get("group_id") for row in rows):
        return rows
    return [{k: v for k, v in row.items() if k != "group_id"} for row in rows]


def ranking_kto_rows(store: Store, keep: Callable[[str], bool]) -> list[dict]:
    """Two KTO rows per effective ranking whose source `keep` accepts: its top answer desirable, its bottom one
    undesirable (the middle ones are neither)."""
    rows = []
    for ranking in store.rankings():
        if not keep(ranking.source):
            continue
        messages, best, _ = store.generation(ranking.gen_ids[0])
        _, worst, _ = store.generation(ranking.gen_ids[-1])
        for text, good in ((best, True), (worst, False)):
            rows.append({"prompt": messages, "completion": [{"role": "assistant", "content": text}], "label": good})
    return rows
