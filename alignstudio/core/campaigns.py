"""Labeling campaigns' overlap: how many distinct annotators each pair gets, and who was handed which pair.

A campaign is a prompt set (its pairs sampled live in the Label tab) or the filled labeling queue (`QUEUE`, the
name the guidelines use too). Its settings row holds the overlap N (1 when there is no row: one annotator per
pair) and what the consensus does with a pair whose annotators disagree (`split`: drop | weight).

The claims table records each handing of a pair to an annotator: live while the pair is on their screen (a
lease: a claim not labeled within `lease_s`, a closed browser, lapses and frees its place), done once they
labeled it. A pair is handed to an annotator only if they hold no done claim on it and its done claims plus the
others' live claims are fewer than N, decided inside one write transaction, so concurrent annotators never
exceed N and nobody is handed a pair twice. Who may change the settings is the service's rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .errors import UserError
from .store_file import StoreFile

QUEUE = "queue"
SPLITS = ("drop", "weight")  # drop: only unanimous pairs; weight: the majority kept, its agreement as a weight
MAX_OVERLAP = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaign_overlap (
    campaign TEXT PRIMARY KEY,          -- a prompt set's name, or 'queue'
    overlap INTEGER NOT NULL,           -- distinct annotators per pair
    split TEXT NOT NULL,                -- drop | weight: the consensus of a pair whose annotators disagree
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pair_claims (
    pair_id TEXT NOT NULL REFERENCES pairs(id),
    annotator TEXT NOT NULL,
    campaign TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,    -- 1: labeled
    PRIMARY KEY (pair_id, annotator)
);
CREATE INDEX IF NOT EXISTS pair_claims_campaign ON pair_claims(campaign, done);
"""

# claims that hold a place on pair `p`: done ones, and live ones of annotators other than `a` (an annotator's own
# open claim is theirs to finish, however old)
_TAKEN = (
    "(SELECT COUNT(*) FROM pair_claims c WHERE c.pair_id={p} AND (c.done=1 OR"
    " (c.annotator != :who AND c.claimed_at >= :live)))"
)
_SERVED_TO_ME = "EXISTS (SELECT 1 FROM pair_claims c WHERE c.pair_id={p} AND c.annotator=:who AND c.done=1)"
_MINE_OPEN = "EXISTS (SELECT 1 FROM pair_claims c WHERE c.pair_id={p} AND c.annotator=:who AND c.done=0)"


@dataclass(frozen=True)
class CampaignSettings:
    campaign: str
    overlap: int = 1
    split: str = "drop"


@dataclass(frozen=True)
class CampaignCounts:
    """Pairs of a campaign: complete (N annotators), in progress (on someone's screen), pending (waiting for one)."""

    campaign: str
    overlap: int
    complete: int
    in_progress: int
    pending: int


def check_settings(overlap, split: str) -> int:
    try:
        overlap = int(overlap)
    except (TypeError, ValueError):
        raise UserError(f"Annotators per pair must be a whole number, not {overlap!r}") from None
    if not 1 <= overlap <= MAX_OVERLAP:
        raise UserError(f"Annotators per pair must be between 1 and {MAX_OVERLAP}, not {overlap}")
    if split not in SPLITS:
        raise UserError(f"Disagreements must be one of {', '.join(SPLITS)}, not {split!r}")
    return overlap


class Campaigns:
    """The overlap settings and claims of one store file."""

    def __init__(self, store: StoreFile, lease_s: float = 900.0):
        self.store = store
        self.lease_s = lease_s
        store._conn().executescript(_SCHEMA)

    # -- settings -----------------------------------------------------------------------------------------
    def settings(self, campaign: str) -> CampaignSettings:
        row = (
            self.store._conn()
            .execute("SELECT overlap, split FROM campaign_overlap WHERE campaign=?", (campaign,))
            .fetchone()
        )
        return CampaignSettings(campaign, row["overlap"], row["split"]) if row else CampaignSettings(campaign)

    def all_settings(self) -> dict[str, CampaignSettings]:
        rows = self.store._conn().execute("SELECT campaign, overlap, split FROM campaign_overlap ORDER BY campaign")
        return {r["campaign"]: CampaignSettings(r["campaign"], r["overlap"], r["split"]) for r in rows}

    def configure(self, campaign: str, overlap, split: str = "drop") -> CampaignSettings:
        overlap = check_settings(overlap, split)
        with self.store._write() as db:
            db.execute(
                "INSERT INTO campaign_overlap(campaign, overlap, split, updated) VALUES (?,?,?,?) ON CONFLICT(campaign)"
                " DO UPDATE SET overlap=excluded.overlap, split=excluded.split, updated=excluded.updated",
                (campaign, overlap, split, time.time()),
            )
            if campaign == QUEUE:  # a pair's done flag follows the new N (a raised N reopens finished pairs)
                db.execute(  # queue items finished before claims were kept have none: they stay finished
                    "UPDATE label_queue SET done = ((SELECT COUNT(*) FROM pair_claims c WHERE"
                    " c.pair_id=label_queue.pair_id AND c.done=1) >= ?) WHERE EXISTS (SELECT 1 FROM pair_claims c"
                    " WHERE c.pair_id=label_queue.pair_id)",
                    (overlap,),
                )
        return CampaignSettings(campaign, overlap, split)

    def consensus_campaigns(self) -> dict[str, str]:
        """{campaign: split} of the campaigns with more than one annotator per pair."""
        return {name: s.split for name, s in self.all_settings().items() if s.overlap > 1}

    # -- claims -------------------------------------------------------------------------------------------
    def claim_queued(self, annotator: str) -> tuple[str, str] | None:
        """(pair_id, reason) of the queue's next item for this annotator (their own open claim first, then by
        priority), claimed for them; None when nothing is left for them."""
        overlap = self.settings(QUEUE).overlap
        return self._claim(
            annotator,
            QUEUE,
            "SELECT q.pair_id, q.reason FROM label_queue q WHERE q.done=0 AND NOT "
            + _SERVED_TO_ME.format(p="q.pair_id")
            + f" AND {_TAKEN.format(p='q.pair_id')} < :n ORDER BY {_MINE_OPEN.format(p='q.pair_id')} DESC, q.priority"
            " LIMIT 1",
            overlap,
        )

    def claim_pending(self, annotator: str, campaign: str) -> str | None:
        """A pair of a prompt-set campaign that someone labeled and that still needs annotators, claimed for this
        annotator (the oldest first); None when there is none for them (the caller samples a new pair)."""
        overlap = self.settings(campaign).overlap
        if overlap <= 1:
            return None
        item = self._claim(
            annotator,
            campaign,
            "SELECT d.pair_id, '' AS reason FROM pair_claims d WHERE d.campaign=:campaign AND d.done=1 AND NOT "
            + _SERVED_TO_ME.format(p="d.pair_id")
            + f" AND {_TAKEN.format(p='d.pair_id')} < :n GROUP BY d.pair_id ORDER BY MIN(d.claimed_at) LIMIT 1",
            overlap,
        )
        return item[0] if item else None

    def _claim(self, annotator: str, campaign: str, query: str, overlap: int) -> tuple[str, str] | None:
        who = annotator.strip()
        if not who:
            raise UserError("enter your annotator name first")
        now = time.time()
        params = {"who": who, "live": now - self.lease_s, "n": overlap, "campaign": campaign}
        with self.store._write() as db:  # the choice and the claim in one transaction: no two take the last place
            row = db.execute(query, params).fetchone()
            if row is None:
                return None
            self._put(db, row["pair_id"], who, campaign, now)
        return row["pair_id"], row["reason"]

    def hand_out(self, pair_id: str, annotator: str, campaign: str) -> None:
        """Claim a freshly sampled pair for the annotator it is handed to (a campaign with overlap above 1)."""
        with self.store._write() as db:
            self._put(db, pair_id, annotator.strip(), campaign, time.time())

    @staticmethod
    def _put(db, pair_id: str, annotator: str, campaign: str, now: float) -> None:
        db.execute(
            "INSERT INTO pair_claims(pair_id, annotator, campaign, claimed_at) VALUES (?,?,?,?) ON CONFLICT"
            "(pair_id, annotator) DO UPDATE SET claimed_at=excluded.claimed_at WHERE done=0",
            (pair_id, annotator, campaign, now),
        )

    def finish(self, pair_id: str, annotator: str) -> None:
        """The annotator labeled the pair: their claim is done (made now if they held none and a place is free);
        a queued pair with N done claims leaves the queue."""
        who = annotator.strip()
        with self.store._write() as db:
            mine = db.execute(
                "SELECT campaign FROM pair_claims WHERE pair_id=? AND annotator=?", (pair_id, who)
            ).fetchone()
            queued = db.execute("SELECT 1 FROM label_queue WHERE pair_id=?", (pair_id,)).fetchone() is not None
            campaign = mine["campaign"] if mine else (QUEUE if queued else None)
            if campaign is None:
                return  # a pair of no campaign with claims: nothing to count
            overlap = self.settings(campaign).overlap
            params = {"who": who, "live": time.time() - self.lease_s}
            if (
                mine is None
                and db.execute(f"SELECT {_TAKEN.format(p=':pair')}", params | {"pair": pair_id}).fetchone()[0]
                >= overlap
            ):
                raise UserError("this item was handed to another annotator")
            self._put(db, pair_id, who, campaign, time.time())
            db.execute("UPDATE pair_claims SET done=1 WHERE pair_id=? AND annotator=?", (pair_id, who))
            if queued:
                done = db.execute("SELECT COUNT(*) FROM pair_claims WHERE pair_id=? AND done=1", (pair_id,)).fetchone()[
                    0
                ]
                db.execute("UPDATE label_queue SET done=? WHERE pair_id=?", (int(done >= overlap), pair_id))

    def release(self, pair_id: str, annotator: str) -> bool:
        """The annotator took their label back (undo): their claim is open again, so the pair counts them only
        once they label it anew, and a queued pair is back in the queue. Whether they held a claim on it."""
        with self.store._write() as db:
            held = db.execute(
                "UPDATE pair_claims SET done=0, claimed_at=? WHERE pair_id=? AND annotator=?",
                (time.time(), pair_id, annotator.strip()),
            ).rowcount
            if held:
                db.execute("UPDATE label_queue SET done=0 WHERE pair_id=?", (pair_id,))
        return bool(held)

    # -- progress -----------------------------------------------------------------------------------------
    def counts(self, campaign: str) -> CampaignCounts:
        overlap = self.settings(campaign).overlap
        live = time.time() - self.lease_s
        if campaign == QUEUE:
            rows = self.store._conn().execute(
                "SELECT q.done AS finished, (SELECT COUNT(*) FROM pair_claims c WHERE c.pair_id=q.pair_id AND"
                " c.done=1) AS labeled, (SELECT COUNT(*) FROM pair_claims c WHERE c.pair_id=q.pair_id AND c.done=0"
                " AND c.claimed_at >= ?) AS open FROM label_queue q",
                (live,),
            )
        else:  # the pairs of a prompt-set campaign that someone labeled or has on screen
            rows = self.store._conn().execute(
                "SELECT 0 AS finished, SUM(done) AS labeled, SUM(done=0 AND claimed_at >= ?) AS open FROM pair_claims"
                " WHERE campaign=? GROUP BY pair_id HAVING labeled > 0 OR open > 0",
                (live, campaign),
            )
        complete = in_progress = pending = 0
        for row in rows:
            if row["finished"] or row["labeled"] >= overlap:
                complete += 1
            elif row["open"]:
                in_progress += 1
            else:
                pending += 1
        return CampaignCounts(campaign, overlap, complete, in_progress, pending)
