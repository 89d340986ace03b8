"""The label store: one handle (`Store`) on an append-only event log in SQLite (WAL).

`Store` is composed from its parts: the file, schema and durable write transactions (`store_file`), the
label-event writes (`store_events`) and the effective-label reads (`store_labels`). This module holds what is
left: prompts, generations and pairs, bulk import, snapshots and model versions.
It knows nothing about models, datasets or the UI.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .store_events import LabelEvents
from .store_file import new_id
from .store_labels import LabelReads
from .store_rankings import RankingEvents


@dataclass(frozen=True)
class PairRecord:
    """A stored pair with its texts, as the UI and exports see it."""

    id: str
    prompt_id: str
    messages: list[dict]
    prompt_set: str
    gen_a: str
    gen_b: str
    text_a: str
    text_b: str
    model_a: str
    model_b: str


class Store(LabelEvents, LabelReads, RankingEvents):
    """Thread-safe handle on the store file (one SQLite connection per thread): every read and write of
    prompts, generations, pairs, labels, snapshots and model versions."""

    # -- prompts, generations, pairs ------------------------------------------------------------
    def add_pair(
        self,
        messages: list[dict],
        text_a: str,
        text_b: str,
        *,
        model_a: str,
        model_b: str,
        params_a: dict | None = None,
        params_b: dict | None = None,
        prompt_set: str = "",
        origin: str = "sampler",
        pair_id: str | None = None,
    ) -> str:
        """Store a prompt and its two responses as a pair; returns the pair id."""
        pair_id = pair_id or new_id()
        with self._write() as db:
            if db.execute("SELECT 1 FROM pairs WHERE id=?", (pair_id,)).fetchone():
                return pair_id
            pid = self._put_prompt(db, messages, prompt_set)
            ga = self._put_generation(db, pid, model_a, params_a or {}, text_a)
            gb = self._put_generation(db, pid, model_b, params_b or {}, text_b)
            db.execute(
                "INSERT INTO pairs(id, prompt_id, gen_a, gen_b, origin, created) VALUES (?,?,?,?,?,?)",
                (pair_id, pid, ga, gb, origin, time.time()),
            )
        return pair_id

    def add_generation(
        self, messages: list[dict], text: str, *, model: str, params: dict | None = None, prompt_set: str = ""
    ) -> str:
        with self._write() as db:
            pid = self._put_prompt(db, messages, prompt_set)
            return self._put_generation(db, pid, model, params or {}, text)

    _PAIR_SELECT = """
        SELECT p.id, p.prompt_id, pr.messages, pr.prompt_set, p.gen_a, p.gen_b,
               ga.text AS text_a, gb.text AS text_b, ga.model AS model_a, gb.model AS model_b
        FROM pairs p JOIN prompts pr ON pr.id = p.prompt_id
        JOIN generations ga ON ga.id = p.gen_a JOIN generations gb ON gb.id = p.gen_b
    """

    @staticmethod
    def _pair(row: sqlite3.Row) -> PairRecord:
        return PairRecord(
            id=row["id"],
            prompt_id=row["prompt_id"],
            messages=json.loads(row["messages"]),
            prompt_set=row["prompt_set"],
            gen_a=row["gen_a"],
            gen_b=row["gen_b"],
            text_a=row["text_a"],
            text_b=row["text_b"],
            model_a=row["model_a"],
            model_b=row["model_b"],
        )

    def pair(self, pair_id: str) -> PairRecord:
        row = self._conn().execute(self._PAIR_SELECT + " WHERE p.id=?", (pair_id,)).fetchone()
        if row is None:
            raise UserError(f"no pair with id {pair_id}")
        return self._pair(row)

    def pairs(self) -> list[PairRecord]:
        return [self._pair(r) for r in self._conn().execute(self._PAIR_SELECT + " ORDER BY p.created")]

    def generation(self, gen_id: str) -> tuple[list[dict], str, str]:
        """(prompt messages, text, prompt set) of one stored response."""
        row = (
            self._conn()
            .execute(
                "SELECT pr.messages, g.text, pr.prompt_set FROM generations g JOIN prompts pr ON pr.id = g.prompt_id"
                " WHERE g.id=?",
                (gen_id,),
            )
            .fetchone()
        )
        if row is None:
            raise UserError(f"no generation with id {gen_id}")
        return json.loads(row["messages"]), row["text"], row["prompt_set"]

    def generation_text(self, gen_id: str) -> str:
        row = self._conn().execute("SELECT text FROM generations WHERE id=?", (gen_id,)).fetchone()
        if row is None:
            raise UserError(f"no generation with id {gen_id}")
        return row["text"]

    # -- bulk import ----------------------------------------------------------------------------
    def import_preferences(
        self, rows: Iterable[dict], *, source: str = "import", prompt_set: str = "", origin: str = "import"
    ) -> int:
        """Store already-judged rows ({messages, chosen, rejected}, optional model_* and params_* with each
        side's provenance) in one transaction: all or nothing. The chosen side is stored as A. A {messages,
        ranking: [best, ..., worst]} row is stored as a ranking and counts its pairs."""
        count = 0
        now = time.time()
        with self._write() as db:
            for row in rows:
                if "ranking" in row:
                    count += self._import_ranking(db, row, source, prompt_set, origin, now)
                    continue
                pid = self._put_prompt(db, row["messages"], prompt_set)
                ga = self._put_generation(
                    db, pid, row.get("model_chosen", "import"), row.get("params_chosen", {}), row["chosen"]
                )
                gb = self._put_generation(
                    db, pid, row.get("model_rejected", "import"), row.get("params_rejected", {}), row["rejected"]
                )
                pair_id = new_id()
                db.execute(
                    "INSERT INTO pairs(id, prompt_id, gen_a, gen_b, origin, created) VALUES (?,?,?,?,?,?)",
                    (pair_id, pid, ga, gb, origin, now),
                )
                db.execute(
                    "INSERT INTO events(id, kind, pair_id, verdict, annotator, source, rationale, created)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (new_id(), "preference", pair_id, "A", "", source, row.get("rationale", ""), now),
                )
                count += 1
        return count

    # -- snapshots and model versions -----------------------------------------------------------
    def add_snapshot(self, kind: str, path: Path, fingerprint: str, rows: int, params: dict) -> str:
        sid = new_id()[:12]
        with self._write() as db:
            db.execute(
                "INSERT INTO snapshots(id, kind, path, fingerprint, rows, params, created) VALUES (?,?,?,?,?,?,?)",
                (sid, kind, str(path), fingerprint, rows, json.dumps(params, sort_keys=True), time.time()),
            )
        return sid

    def snapshots(self) -> list[dict]:
        rows = self._conn().execute("SELECT * FROM snapshots ORDER BY created DESC")
        return [dict(r) | {"params": json.loads(r["params"])} for r in rows]

    def register_model(
        self, name: str, path: Path, *, kind: str, base: str | None = None, run_dir: Path | None = None
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO model_versions(name, path, base, kind, run_dir, created) VALUES (?,?,?,?,?,?)",
                (name, str(path), base, kind, str(run_dir) if run_dir else None, time.time()),
            )

    def model_versions(self) -> list[dict]:
        return [dict(r) for r in self._conn().execute("SELECT * FROM model_versions ORDER BY created")]
