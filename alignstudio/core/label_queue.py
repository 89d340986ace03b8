"""The human labeling queue: stored pairs waiting for a label, in priority order, N distinct annotators per item.

Owns the queue table in the store file. `claim` hands the highest-priority item this annotator has not labeled
and that still has a free place (the queue campaign's overlap N, 1 by default: `campaigns`) inside a write
transaction, so no item is handed to more than N annotators, nor twice to one; a claim that is not answered
within `lease_s` (closed browser) frees its place. Priorities come from the caller (random, or the
active-learning order in `services.labeling.active`).
"""

from __future__ import annotations

from .campaigns import Campaigns
from .errors import UserError
from .store import Store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS label_queue (
    pair_id TEXT PRIMARY KEY REFERENCES pairs(id),
    priority REAL NOT NULL,        -- lower comes first
    reason TEXT NOT NULL DEFAULT '',
    claimed_by TEXT,               -- unused since claims moved to campaigns' pair_claims (kept: older files)
    claimed_at REAL,
    done INTEGER NOT NULL DEFAULT 0  -- 1: labeled by the queue's N annotators
);
CREATE INDEX IF NOT EXISTS label_queue_next ON label_queue(done, priority);
"""


class LabelQueue:
    def __init__(self, store: Store, lease_s: float = 900.0):
        self.store = store
        self.lease_s = lease_s
        store._conn().executescript(_SCHEMA)
        self.campaigns = Campaigns(store, lease_s)

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
        """(pair_id, reason) of the next item for this annotator (their open one first), or None when nothing in
        the queue is left for them."""
        return self.campaigns.claim_queued(annotator)

    def complete(self, pair_id: str, annotator: str) -> None:
        """The annotator labeled the item; refused when its places were all handed to others."""
        self.campaigns.finish(pair_id, annotator)

    def waiting(self) -> int:
        return self.store._conn().execute("SELECT COUNT(*) FROM label_queue WHERE done=0").fetchone()[0]
