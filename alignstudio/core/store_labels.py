"""Label reads: the effective labels (every preference or feedback event no `retract` cancels) and counts.

Read-only queries on the event log (one SELECT each, so each sees one committed state); the writes that make
the events are `store_events`'s.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

from .store_file import StoreFile


@dataclass(frozen=True)
class Label:
    """An effective (not retracted) preference or feedback event."""

    id: str
    kind: str
    pair_id: str | None
    gen_id: str | None
    verdict: str
    shown_left: str | None
    annotator: str
    source: str
    rationale: str
    created: float
    strength: str | None = None  # "much" | "slight" for a graded A/B verdict, None for a plain one
    guidelines: str | None = None  # the guidelines version the item was shown with, None when there were none
    extra: dict = field(default_factory=dict)


class LabelReads(StoreFile):
    """The label queries of `Store`."""

    def labels(self, kind: str = "preference") -> list[Label]:
        """Effective labels of one kind, oldest first: every event not cancelled by a retract."""
        rows = self._conn().execute(
            "SELECT e.* FROM events e WHERE e.kind=? AND NOT EXISTS"
            " (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id) ORDER BY e.seq",
            (kind,),
        )
        return [self._label(r) for r in rows]

    @staticmethod
    def _label(r: sqlite3.Row) -> Label:
        return Label(
            id=r["id"],
            kind=r["kind"],
            pair_id=r["pair_id"],
            gen_id=r["gen_id"],
            verdict=r["verdict"],
            shown_left=r["shown_left"],
            annotator=r["annotator"],
            source=r["source"],
            rationale=r["rationale"],
            created=r["created"],
            strength=r["strength"],
            guidelines=r["guidelines"],
        )

    def label(self, event_id: str) -> Label | None:
        """One preference or feedback event by id (retracted or not), or None."""
        row = self._conn().execute("SELECT * FROM events WHERE id=? AND kind != 'retract'", (event_id,)).fetchone()
        return self._label(row) if row else None

    def last_label(self, annotator: str, kind: str = "preference", source: str = "human") -> Label | None:
        """This annotator's newest effective label of one kind (what "undo last" takes back)."""
        row = (
            self._conn()
            .execute(
                "SELECT e.* FROM events e WHERE e.kind=? AND e.annotator=? AND e.source=? AND NOT EXISTS"
                " (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id) ORDER BY e.seq DESC LIMIT 1",
                (kind, annotator, source),
            )
            .fetchone()
        )
        return self._label(row) if row else None

    def labeled_prompts(self, prompt_set: str) -> int:
        """Distinct prompts of a prompt set with at least one effective human preference label."""
        return (
            self._conn()
            .execute(
                "SELECT COUNT(DISTINCT p.prompt_id) FROM events e JOIN pairs p ON p.id = e.pair_id"
                " JOIN prompts pr ON pr.id = p.prompt_id WHERE e.kind='preference' AND e.source='human'"
                " AND pr.prompt_set=? AND NOT EXISTS (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id)",
                (prompt_set,),
            )
            .fetchone()[0]
        )

    def label_count(self, annotator: str, kind: str = "preference") -> int:
        return (
            self._conn()
            .execute(
                "SELECT COUNT(*) FROM events e WHERE e.kind=? AND e.annotator=? AND NOT EXISTS"
                " (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id)",
                (kind, annotator),
            )
            .fetchone()[0]
        )

    def event_count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def iter_events(self) -> Iterator[sqlite3.Row]:
        yield from self._conn().execute("SELECT * FROM events ORDER BY seq")

    def preference_rows(self) -> list[dict]:
        """Effective preference labels joined with their pair's texts, for exports and validation."""
        rows = self._conn().execute(
            """
            SELECT e.id AS event_id, e.pair_id, e.verdict, e.strength, e.group_id, e.shown_left, e.annotator, e.source,
                   e.rationale, e.created, e.guidelines, pr.messages, pr.prompt_set, p.origin,
                   ga.text AS text_a, gb.text AS text_b, ga.model AS model_a, gb.model AS model_b,
                   ga.params AS params_a, gb.params AS params_b, ed.text AS edited_text
            FROM events e JOIN pairs p ON p.id = e.pair_id JOIN prompts pr ON pr.id = p.prompt_id
            JOIN generations ga ON ga.id = p.gen_a JOIN generations gb ON gb.id = p.gen_b
            LEFT JOIN generations ed ON ed.id = e.gen_id
            WHERE e.kind = 'preference' AND NOT EXISTS
                (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id)
            ORDER BY e.seq
            """
        )
        return [
            dict(r)
            | {
                "messages": json.loads(r["messages"]),
                "params_a": json.loads(r["params_a"]),
                "params_b": json.loads(r["params_b"]),
            }
            for r in rows
        ]

    def feedback_rows(self) -> list[dict]:
        rows = self._conn().execute(
            """
            SELECT e.id AS event_id, e.gen_id, e.verdict, e.annotator, e.source, e.rationale, e.created,
                   e.guidelines, pr.messages, pr.prompt_set, g.text, g.model
            FROM events e JOIN generations g ON g.id = e.gen_id JOIN prompts pr ON pr.id = g.prompt_id
            WHERE e.kind = 'feedback' AND NOT EXISTS
                (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id)
            ORDER BY e.seq
            """
        )
        return [dict(r) | {"messages": json.loads(r["messages"])} for r in rows]
