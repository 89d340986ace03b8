"""The judge cache: verdicts by content hash (remote judges pay once), the log of combined judgments (both orders
per pair, for the agreement view) and each judge's latest report card, in one SQLite file in the workspace."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.errors import UserError
from . import Judge, JudgeInput, Verdict

if TYPE_CHECKING:
    from .protocol import PairJudgment

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, judge TEXT NOT NULL, verdict TEXT NOT NULL,
                                  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS judgments (seq INTEGER PRIMARY KEY AUTOINCREMENT, judge TEXT NOT NULL,
                                      pair_id TEXT NOT NULL, first TEXT, second TEXT, winner TEXT,
                                      len_a INTEGER, len_b INTEGER, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS judgments_judge ON judgments(judge);
CREATE TABLE IF NOT EXISTS cards (judge TEXT PRIMARY KEY, card TEXT NOT NULL, created REAL NOT NULL);
"""


class JudgeCache:
    """Verdicts by content hash, and the log of combined judgments, in one SQLite file (WAL; thread-safe)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UserError(f"cannot open the judge cache {self.path}: {exc}") from None

    @classmethod
    def for_workspace(cls, workspace) -> "JudgeCache":
        return cls(Path(workspace.root) / "judge_cache" / "judge.sqlite")

    @staticmethod
    def key(judge: Judge, item: JudgeInput) -> str:
        data = json.dumps(
            [judge.fingerprint(), item.messages, item.response_a, item.response_b], ensure_ascii=False, sort_keys=True
        )
        return hashlib.sha256(data.encode("utf-8")).hexdigest()

    def get(self, key: str) -> Verdict | None:
        with self._lock:
            row = self._db.execute("SELECT verdict FROM cache WHERE key=?", (key,)).fetchone()
        return Verdict.from_dict(json.loads(row[0])) if row else None

    def put(self, key: str, judge: str, verdict: Verdict) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO cache(key, judge, verdict, created) VALUES (?,?,?,?)",
                (key, judge, json.dumps(verdict.to_dict(), ensure_ascii=False), time.time()),
            )

    def size(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]

    def record(self, judge: str, judgments: Iterable[PairJudgment], prefix: str = "") -> None:
        rows = [
            (judge, prefix + j.key, j.first.winner, j.second_winner, j.winner, j.len_a, j.len_b, time.time())
            for j in judgments
            if j.consistent is not None and not j.identical
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO judgments(judge, pair_id, first, second, winner, len_a, len_b, created)"
                " VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
            self._db.execute("COMMIT")

    def judgments(self, judge: str | None = None) -> list[dict]:
        query = "SELECT judge, pair_id, first, second, winner, len_a, len_b, created FROM judgments"
        args: tuple = ()
        if judge is not None:
            query, args = query + " WHERE judge=?", (judge,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        keys = ("judge", "pair_id", "first", "second", "winner", "len_a", "len_b", "created")
        return [dict(zip(keys, r)) for r in rows]

    def put_card(self, judge: str, card: dict) -> None:
        """A judge's latest report card (`report_card`), replacing its earlier one."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO cards(judge, card, created) VALUES (?,?,?)",
                (judge, json.dumps(card, ensure_ascii=False), time.time()),
            )

    def cards(self) -> list[dict]:
        """Every measured judge's latest report card, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT card FROM cards ORDER BY created DESC").fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
