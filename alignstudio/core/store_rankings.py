"""Rankings of K answers to one prompt: one stored event that expands to its K(K-1)/2 pairs.

A ranking is a row of `rankings` (its id is the caller-chosen event id, so a retried submission stores nothing
twice) plus one pair and one preference event per two of its answers, every event carrying the ranking's id as
its `group_id`: each reader of pairwise labels (validation, snapshots, agreement) sees the pairs as it sees any
other. Retracting a ranking appends a `retract` for the ranking and for each of its pairs, in one transaction.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from itertools import combinations

from . import access
from .errors import UserError
from .store_file import StoreFile, new_id

MIN_ANSWERS, MAX_ANSWERS = 2, 4  # what one screen shows; an import may rank more


@dataclass(frozen=True)
class Ranking:
    """A stored ranking: its generations best first, and whether a retract cancels it."""

    id: str
    prompt_id: str
    gen_ids: list[str]
    shown: list[str] | None
    annotator: str
    source: str
    created: float
    retracted: bool


def pair_count(k: int) -> int:
    return k * (k - 1) // 2


class RankingEvents(StoreFile):
    """The ranking writes and reads of `Store`."""

    def add_answers(
        self, messages: list[dict], texts: list[str], *, models: list[str], params: list[dict], prompt_set: str = ""
    ) -> list[str]:
        """K answers to one prompt stored (unranked) in one transaction; their generation ids, in order."""
        with self._write() as db:
            pid = self._put_prompt(db, messages, prompt_set)
            return [self._put_generation(db, pid, m, p, t) for m, p, t in zip(models, params, texts, strict=True)]

    def add_ranking(
        self,
        ranked: list[str],
        *,
        annotator: str = "",
        source: str = "human",
        shown: list[str] | None = None,
        event_id: str | None = None,
        origin: str = "ranking",
    ) -> tuple[str, bool]:
        """Store a ranking of stored generations (`ranked`: best first) and its pairs; (its id, whether this call
        stored it). The same `event_id` again (a retry, a double click) stores nothing."""
        if len(ranked) < MIN_ANSWERS or len(set(ranked)) != len(ranked):
            raise UserError(f"a ranking needs at least {MIN_ANSWERS} different answers, got {len(set(ranked))}")
        if shown is not None and sorted(shown) != sorted(ranked):
            raise UserError("the ranking must order exactly the answers shown")
        event_id = event_id or new_id()
        with self._write() as db:
            if db.execute("SELECT 1 FROM rankings WHERE id=?", (event_id,)).fetchone():
                return event_id, False
            marks = ",".join("?" * len(ranked))
            found = db.execute(f"SELECT id, prompt_id FROM generations WHERE id IN ({marks})", ranked).fetchall()
            if len(found) != len(ranked):
                raise UserError("the ranking names an answer the store does not have")
            prompts = {row["prompt_id"] for row in found}
            if len(prompts) != 1:
                raise UserError("a ranking's answers must all answer the same prompt")
            self._put_ranking(db, event_id, prompts.pop(), ranked, shown, annotator, source, origin, time.time())
        return event_id, True

    @staticmethod
    def _put_ranking(db, ranking_id, pid, ranked, shown, annotator, source, origin, now) -> int:
        """The ranking row, and one pair and preference event per two answers (A: the one shown first, so the
        verdict is not always A); the number of pairs."""
        db.execute(
            "INSERT INTO rankings(id, prompt_id, gen_ids, shown, annotator, source, created) VALUES (?,?,?,?,?,?,?)",
            (ranking_id, pid, json.dumps(ranked), json.dumps(shown) if shown else None, annotator, source, now),
        )
        position = {gen: i for i, gen in enumerate(shown or ranked)}
        for n, (better, worse) in enumerate(combinations(ranked, 2)):
            gen_a, gen_b = sorted((better, worse), key=position.__getitem__)
            pair_id = new_id()
            db.execute(
                "INSERT INTO pairs(id, prompt_id, gen_a, gen_b, origin, created) VALUES (?,?,?,?,?,?)",
                (pair_id, pid, gen_a, gen_b, origin, now),
            )
            db.execute(
                "INSERT INTO events(id, kind, pair_id, verdict, annotator, source, created, group_id)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    f"{ranking_id}-{n}",
                    "preference",
                    pair_id,
                    "A" if better == gen_a else "B",
                    annotator,
                    source,
                    now,
                    ranking_id,
                ),
            )
        return pair_count(len(ranked))

    def _import_ranking(self, db, row: dict, source: str, prompt_set: str, origin: str, now: float) -> int:
        """An imported {messages, ranking: [best, ..., worst]} row, inside `import_preferences`' transaction."""
        pid = self._put_prompt(db, row["messages"], prompt_set)
        params = row.get("params_ranking") or [{} for _ in row["ranking"]]
        gens = [self._put_generation(db, pid, "import", p, text) for p, text in zip(params, row["ranking"])]
        return self._put_ranking(db, new_id(), pid, gens, None, "", source, origin, now)

    def retract_ranking(self, ranking_id: str, *, annotator: str = "") -> str:
        """Cancel a ranking and every pair label it gave (one transaction); the retract's id."""
        with self._write() as db:
            row = db.execute("SELECT annotator FROM rankings WHERE id=?", (ranking_id,)).fetchone()
            access.require_owner(row["annotator"] if row else None, f"no ranking with id {ranking_id}")
            if db.execute("SELECT 1 FROM events WHERE target=?", (ranking_id,)).fetchone():
                raise UserError(f"ranking {ranking_id} is already retracted")
            now, rid = time.time(), new_id()
            targets = [ranking_id] + [
                r["id"]
                for r in db.execute(
                    "SELECT e.id FROM events e WHERE e.group_id=? AND NOT EXISTS"
                    " (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id)",
                    (ranking_id,),
                )
            ]
            for n, target in enumerate(targets):
                db.execute(
                    "INSERT INTO events(id, kind, target, annotator, source, created) VALUES (?,?,?,?,?,?)",
                    (rid if n == 0 else new_id(), "retract", target, annotator, "human", now),
                )
        return rid

    def answers_for(self, campaign: str) -> int:
        """Answers per prompt the Label tab shows for this campaign (a prompt set): 2, a pair, unless set."""
        row = self._conn().execute("SELECT answers FROM campaign_answers WHERE campaign=?", (campaign,)).fetchone()
        return row["answers"] if row else MIN_ANSWERS

    def set_answers(self, campaign: str, answers: int) -> None:
        if not MIN_ANSWERS <= answers <= MAX_ANSWERS:
            raise UserError(f"answers per prompt must be {MIN_ANSWERS} to {MAX_ANSWERS}, not {answers}")
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO campaign_answers(campaign, answers, updated) VALUES (?,?,?)",
                (campaign, answers, time.time()),
            )

    _RANKING_SELECT = (
        "SELECT k.*, EXISTS (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=k.id) AS retracted"
        " FROM rankings k"
    )

    @staticmethod
    def _ranking(row) -> Ranking:
        return Ranking(
            row["id"],
            row["prompt_id"],
            json.loads(row["gen_ids"]),
            json.loads(row["shown"]) if row["shown"] else None,
            row["annotator"],
            row["source"],
            row["created"],
            bool(row["retracted"]),
        )

    def ranking(self, ranking_id: str) -> Ranking | None:
        row = self._conn().execute(self._RANKING_SELECT + " WHERE k.id=?", (ranking_id,)).fetchone()
        return self._ranking(row) if row else None

    def rankings(self) -> list[Ranking]:
        """Every effective (not retracted) ranking, oldest first."""
        rows = self._conn().execute(self._RANKING_SELECT + " ORDER BY k.created, k.rowid")
        return [r for r in map(self._ranking, rows) if not r.retracted]

    def last_ranking(self, annotator: str) -> Ranking | None:
        """This annotator's newest effective human ranking (what undo takes back)."""
        row = (
            self._conn()
            .execute(
                self._RANKING_SELECT + " WHERE k.annotator=? AND k.source='human' AND NOT EXISTS"
                " (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=k.id) ORDER BY k.rowid DESC LIMIT 1",
                (annotator,),
            )
            .fetchone()
        )
        return self._ranking(row) if row else None
