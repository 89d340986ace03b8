"""The human labeling queue: stored pairs waiting for a label, in priority order, one annotator per item.

Owns the queue table in the store file. `claim` hands the highest-priority unclaimed item to one annotator
inside a write transaction, so two annotators can never be handed the same item; a claim that is not
answered within `lease_s` (closed browser) returns to the queue. Priorities come from the caller (random,
or the active-learning order in `services.labeling.active`).
"""

from __future__ import annotations

import time

from .errors import UserError
from .store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS label_queue (
    pair_id TEXT PRIMARY KEY REFERENCES pairs(id),
    priority REAL NOT NULL,        -- lower comes first
    reason TEXT NOT NULL DEFAULT '',
    claimed_by TEXT,
    claimed_at REAL,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS label_queue_next ON label_queue(done, priority);
"""


class LabelQueue:
    def __init__(self, store: Store, lease_s: float = 900.0):
        self.store = store
        self.lease_s = lease_s
        store._conn().executescript(_SCHEMA)

    def fill(self, priorities: dict[str, float], reasons: dict[str, str] | None = None) -> int:
        """Put pairs in the queue (or update their priority); returns how many are waiting."""
        reasons = reasons or {}
        with self.store._write() as db:
            for pair_id, priority in priorities.items():
                if db.execute("SELECT 1 FROM pairs WHERE id=?", (pair_id,)).fetchone() is None:
                    raise UserError(f"no pair with id {pair_id}")
                db.execute(
                    "INSERT INTO label_queue(pair_id, priority, reason) VALUES (?,?,?) ON CONFLICT(pair_id)"
                    " DO UPDATE SET priority=excluded.priority, reason=excluded.reason",
                    (pair_id, float(priority), reasons.get(pair_id, "")),
                )
        return self.waiting()

    def claim(self, annotator: str) -> tuple[str, str] | None:
        """(pair_id, reason) of the next item for this annotator, or None when the queue is empty."""
        if not annotator.strip():
            raise UserError("enter your annotator name first")
        now = time.time()
        with self.store._write() as db:
            row = db.execute(
                "SELECT pair_id, reason FROM label_queue WHERE done=0 AND"
                " (claimed_by IS NULL OR claimed_by=? OR claimed_at < ?) ORDER BY"
                " (claimed_by IS NOT NULL AND claimed_by=?) DESC, priority LIMIT 1",
                (annotator, now - self.lease_s, annotator),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE label_queue SET claimed_by=?, claimed_at=? WHERE pair_id=?", (annotator, now, row["pair_id"])
            )
        return row["pair_id"], row["reason"]

    def complete(self, pair_id: str, annotator: str) -> None:
        with self.store._write() as db:
            row = db.execute("SELECT claimed_by FROM label_queue WHERE pair_id=?", (pair_id,)).fetchone()
            if row is not None and row["claimed_by"] not in (None, annotator):
                raise UserError("this item was handed to another annotator")
            db.execute("UPDATE label_queue SET done=1, claimed_by=? WHERE pair_id=?", (annotator, pair_id))

    def waiting(self) -> int:
        return self.store._conn().execute("SELECT COUNT(*) FROM label_queue WHERE done=0").fetchone()[0]
