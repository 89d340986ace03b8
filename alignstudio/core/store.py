"""The label store: an append-only event log in SQLite (WAL), safe for many threads and processes.

Owns the schema and every read and write of labels, generations, prompts, snapshots and model versions.
Labels are events: undo and relabel append a `retract` event, nothing is updated in place, so the full
history (who said what, when, seeing which side on the left) is kept. A write returns only after its
transaction is committed with `synchronous=FULL`, so an acknowledged label survives a crash.
Writers (threads and processes) queue on an exclusive `flock` of a side file (`<store>.writelock`) before they
open their transaction: the kernel wakes the next writer the moment the lock is free, where SQLite's own
busy handler would sleep and poll (1, 2, 5, ... 100 ms), which gave concurrent writers a tail of up to seconds.
SQLite's locking still guards the data; the flock only orders our writers.
It knows nothing about models, datasets or the UI.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from . import access
from .errors import UserError

VERDICTS = ("A", "B", "tie", "both_bad")
FEEDBACK = ("up", "down")
SIDES = ("A", "B")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    id TEXT PRIMARY KEY,            -- content hash of the messages
    messages TEXT NOT NULL,         -- JSON list of {role, content}
    prompt_set TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS generations (
    id TEXT PRIMARY KEY,
    prompt_id TEXT NOT NULL REFERENCES prompts(id),
    model TEXT NOT NULL,            -- model version name, or 'human-edit'
    params TEXT NOT NULL,           -- JSON sampling parameters and provenance (system prompt; dataset, id)
    text TEXT NOT NULL,
    edited_from TEXT,               -- generation this one was edited from (human-edited answers)
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pairs (
    id TEXT PRIMARY KEY,
    prompt_id TEXT NOT NULL REFERENCES prompts(id),
    gen_a TEXT NOT NULL REFERENCES generations(id),
    gen_b TEXT NOT NULL REFERENCES generations(id),
    origin TEXT NOT NULL,           -- sampler | synthetic | import | arena | ...
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,        -- caller-chosen ids make retried writes idempotent
    kind TEXT NOT NULL CHECK (kind IN ('preference', 'feedback', 'retract')),
    pair_id TEXT REFERENCES pairs(id),
    gen_id TEXT REFERENCES generations(id),    -- feedback target, or the human-edited chosen answer
    verdict TEXT,                   -- A | B | tie | both_bad (preference), up | down (feedback)
    shown_left TEXT,                -- which of A/B the annotator saw on the left
    annotator TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,           -- human | judge:NAME | arena | import | synthetic
    rationale TEXT NOT NULL DEFAULT '',
    target TEXT,                    -- event id a retract cancels
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_pair ON events(pair_id);
CREATE INDEX IF NOT EXISTS events_target ON events(target);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rows INTEGER NOT NULL,
    params TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    base TEXT,                      -- base model name for adapters
    kind TEXT NOT NULL,             -- base | adapter | full
    run_dir TEXT,
    created REAL NOT NULL
);
"""


def new_id() -> str:
    return uuid.uuid4().hex


def prompt_id(messages: list[dict]) -> str:
    canonical = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


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
    extra: dict = field(default_factory=dict)


class Store:
    """Thread-safe handle on the store file; one SQLite connection per thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".writelock")
        self._local = threading.local()
        self._writer = threading.Lock()  # this handle's threads queue here (one wakes per release), then on flock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(_SCHEMA)  # idempotent DDL; executescript commits by itself
        except sqlite3.DatabaseError as exc:
            self.close()
            raise UserError(f"cannot open the store {self.path}: {exc}") from None

    # -- connections --------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we acknowledge it
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def _lock_fd(self) -> int:
        """This thread's descriptor of the write-lock file: its own open file description, so flock
        excludes the other threads of this process as well as other processes. Held in a file object,
        which closes itself when the thread (and its thread-local) goes away."""
        handle = getattr(self._local, "lock_file", None)
        if handle is None:
            handle = open(self.lock_path, "ab")  # noqa: SIM115 - lives as long as the thread's connection
            self._local.lock_file = handle
        return handle.fileno()

    class _Tx:
        def __init__(self, conn: sqlite3.Connection, lock_fd: int, writer: threading.Lock):
            self.conn = conn
            self.lock_fd = lock_fd
            self.writer = writer

        def __enter__(self) -> sqlite3.Connection:
            self.writer.acquire()
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX)  # then behind other processes' writers: woken, not polled
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                except BaseException:
                    fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
                    raise
            except BaseException:
                self.writer.release()
                raise
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                self._finish(exc_type, exc)
            finally:
                fcntl.flock(self.lock_fd, fcntl.LOCK_UN)  # after COMMIT/ROLLBACK: the next writer may go
                self.writer.release()

        def _finish(self, exc_type, exc) -> None:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")  # durable (synchronous=FULL) before the caller returns
                    return
                except sqlite3.OperationalError as commit_error:
                    exc = commit_error
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and ("full" in str(exc) or "disk" in str(exc)
                                                               or "readonly" in str(exc)):
                # nothing was written; say why in one line instead of a traceback
                raise UserError(f"the store could not be written ({exc}); free disk space and try again") from None
            if exc_type is None:
                raise exc

    def _write(self) -> "Store._Tx":
        return Store._Tx(self._conn(), self._lock_fd(), self._writer)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        handle = getattr(self._local, "lock_file", None)
        if handle is not None:
            handle.close()
            self._local.lock_file = None

    def integrity_ok(self) -> bool:
        return self._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # -- prompts, generations, pairs ------------------------------------------------------------
    @staticmethod
    def _put_prompt(db: sqlite3.Connection, messages: list[dict], prompt_set: str) -> str:
        pid = prompt_id(messages)
        db.execute(
            "INSERT OR IGNORE INTO prompts(id, messages, prompt_set, created) VALUES (?,?,?,?)",
            (pid, json.dumps(messages, ensure_ascii=False), prompt_set, time.time()),
        )
        return pid

    @staticmethod
    def _put_generation(db, pid: str, model: str, params: dict, text: str, edited_from=None) -> str:
        gid = new_id()
        db.execute(
            "INSERT INTO generations(id, prompt_id, model, params, text, edited_from, created)"
            " VALUES (?,?,?,?,?,?,?)",
            (gid, pid, model, json.dumps(params, sort_keys=True), text, edited_from, time.time()),
        )
        return gid

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

    def add_generation(self, messages: list[dict], text: str, *, model: str, params: dict | None = None,
                       prompt_set: str = "") -> str:
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
            id=row["id"], prompt_id=row["prompt_id"], messages=json.loads(row["messages"]),
            prompt_set=row["prompt_set"], gen_a=row["gen_a"], gen_b=row["gen_b"],
            text_a=row["text_a"], text_b=row["text_b"], model_a=row["model_a"], model_b=row["model_b"],
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
        row = self._conn().execute(
            "SELECT pr.messages, g.text, pr.prompt_set FROM generations g JOIN prompts pr ON pr.id = g.prompt_id"
            " WHERE g.id=?", (gen_id,)).fetchone()
        if row is None:
            raise UserError(f"no generation with id {gen_id}")
        return json.loads(row["messages"]), row["text"], row["prompt_set"]

    def generation_text(self, gen_id: str) -> str:
        row = self._conn().execute("SELECT text FROM generations WHERE id=?", (gen_id,)).fetchone()
        if row is None:
            raise UserError(f"no generation with id {gen_id}")
        return row["text"]

    # -- label events -------------------------------------------------------------------------
    def add_preference(
        self,
        pair_id: str,
        verdict: str,
        *,
        annotator: str = "",
        source: str = "human",
        shown_left: str | None = None,
        rationale: str = "",
        edited_text: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """Append a preference label. With `edited_text`, the annotator rewrote the winning side: the
        rewrite is stored as a human-edited generation and exported as the chosen response."""
        if verdict not in VERDICTS:
            raise UserError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        if shown_left is not None and shown_left not in SIDES:
            raise UserError(f"shown_left must be A or B, not {shown_left!r}")
        if edited_text is not None:
            if verdict not in SIDES:
                raise UserError("an edited answer must be the chosen side (verdict A or B)")
            if not edited_text.strip():
                raise UserError("the edited answer is empty")
        event_id = event_id or new_id()
        with self._write() as db:
            if db.execute("SELECT 1 FROM events WHERE id=?", (event_id,)).fetchone():
                return event_id  # a retried write: already stored once
            pair = db.execute("SELECT prompt_id, gen_a, gen_b FROM pairs WHERE id=?", (pair_id,)).fetchone()
            if pair is None:
                raise UserError(f"no pair with id {pair_id}")
            gen_id = None
            if edited_text is not None:
                original = pair["gen_a"] if verdict == "A" else pair["gen_b"]
                gen_id = self._put_generation(
                    db, pair["prompt_id"], "human-edit", {}, edited_text, edited_from=original
                )
            db.execute(
                "INSERT INTO events(id, kind, pair_id, gen_id, verdict, shown_left, annotator, source,"
                " rationale, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (event_id, "preference", pair_id, gen_id, verdict, shown_left, annotator, source,
                 rationale, time.time()),
            )
        return event_id

    def add_feedback(self, gen_id: str, verdict: str, *, annotator: str = "", source: str = "human",
                     rationale: str = "", event_id: str | None = None) -> str:
        if verdict not in FEEDBACK:
            raise UserError(f"feedback must be 'up' or 'down', not {verdict!r}")
        event_id = event_id or new_id()
        with self._write() as db:
            if db.execute("SELECT 1 FROM events WHERE id=?", (event_id,)).fetchone():
                return event_id
            if db.execute("SELECT 1 FROM generations WHERE id=?", (gen_id,)).fetchone() is None:
                raise UserError(f"no generation with id {gen_id}")
            db.execute(
                "INSERT INTO events(id, kind, gen_id, verdict, annotator, source, rationale, created)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (event_id, "feedback", gen_id, verdict, annotator, source, rationale, time.time()),
            )
        return event_id

    def retract(self, event_id: str, *, annotator: str = "") -> str:
        """Cancel a label by appending a retract event (undo, or the first half of a relabel)."""
        with self._write() as db:
            row = db.execute("SELECT kind, annotator FROM events WHERE id=?", (event_id,)).fetchone()
            if row is None or row["kind"] == "retract":
                raise UserError(f"no label with id {event_id}")
            access.require_owner(row["annotator"], "undo or retract")
            if db.execute("SELECT 1 FROM events WHERE target=?", (event_id,)).fetchone():
                raise UserError(f"label {event_id} is already retracted")
            rid = new_id()
            db.execute(
                "INSERT INTO events(id, kind, target, annotator, source, created) VALUES (?,?,?,?,?,?)",
                (rid, "retract", event_id, annotator, "human", time.time()),
            )
        return rid

    def relabel(self, event_id: str, verdict: str, *, annotator: str) -> str:
        """Retract a preference and append its replacement (same pair and side order) atomically."""
        if verdict not in VERDICTS:
            raise UserError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        with self._write() as db:
            old = db.execute("SELECT * FROM events WHERE id=? AND kind='preference'", (event_id,)).fetchone()
            if old is None:
                raise UserError(f"no pairwise label with id {event_id}")
            access.require_owner(old["annotator"], "relabel")
            if db.execute("SELECT 1 FROM events WHERE target=?", (event_id,)).fetchone():
                raise UserError(f"label {event_id} is already retracted")
            now = time.time()
            db.execute("INSERT INTO events(id, kind, target, annotator, source, created) VALUES (?,?,?,?,?,?)",
                       (new_id(), "retract", event_id, annotator, "human", now))
            new = new_id()
            db.execute(
                "INSERT INTO events(id, kind, pair_id, verdict, shown_left, annotator, source, rationale, created)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (new, "preference", old["pair_id"], verdict, old["shown_left"], annotator or old["annotator"],
                 old["source"], f"relabel of {event_id}", now),
            )
        return new

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
        return Label(id=r["id"], kind=r["kind"], pair_id=r["pair_id"], gen_id=r["gen_id"], verdict=r["verdict"],
                     shown_left=r["shown_left"], annotator=r["annotator"], source=r["source"],
                     rationale=r["rationale"], created=r["created"])

    def label(self, event_id: str) -> Label | None:
        """One preference or feedback event by id (retracted or not), or None."""
        row = self._conn().execute("SELECT * FROM events WHERE id=? AND kind != 'retract'", (event_id,)).fetchone()
        return self._label(row) if row else None

    def last_label(self, annotator: str, kind: str = "preference", source: str = "human") -> Label | None:
        """This annotator's newest effective label of one kind (what "undo last" takes back)."""
        row = self._conn().execute(
            "SELECT e.* FROM events e WHERE e.kind=? AND e.annotator=? AND e.source=? AND NOT EXISTS"
            " (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id) ORDER BY e.seq DESC LIMIT 1",
            (kind, annotator, source),
        ).fetchone()
        return self._label(row) if row else None

    def labeled_prompts(self, prompt_set: str) -> int:
        """Distinct prompts of a prompt set with at least one effective human preference label."""
        return self._conn().execute(
            "SELECT COUNT(DISTINCT p.prompt_id) FROM events e JOIN pairs p ON p.id = e.pair_id"
            " JOIN prompts pr ON pr.id = p.prompt_id WHERE e.kind='preference' AND e.source='human'"
            " AND pr.prompt_set=? AND NOT EXISTS (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id)",
            (prompt_set,),
        ).fetchone()[0]

    def label_count(self, annotator: str, kind: str = "preference") -> int:
        return self._conn().execute(
            "SELECT COUNT(*) FROM events e WHERE e.kind=? AND e.annotator=? AND NOT EXISTS"
            " (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id)", (kind, annotator),
        ).fetchone()[0]

    def event_count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def iter_events(self) -> Iterator[sqlite3.Row]:
        yield from self._conn().execute("SELECT * FROM events ORDER BY seq")

    def preference_rows(self) -> list[dict]:
        """Effective preference labels joined with their pair's texts, for exports and validation."""
        rows = self._conn().execute(
            """
            SELECT e.id AS event_id, e.pair_id, e.verdict, e.shown_left, e.annotator, e.source,
                   e.rationale, e.created, pr.messages, pr.prompt_set, p.origin,
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
        return [dict(r) | {"messages": json.loads(r["messages"]), "params_a": json.loads(r["params_a"]),
                           "params_b": json.loads(r["params_b"])} for r in rows]

    def feedback_rows(self) -> list[dict]:
        rows = self._conn().execute(
            """
            SELECT e.id AS event_id, e.gen_id, e.verdict, e.annotator, e.source, e.rationale, e.created,
                   pr.messages, pr.prompt_set, g.text, g.model
            FROM events e JOIN generations g ON g.id = e.gen_id JOIN prompts pr ON pr.id = g.prompt_id
            WHERE e.kind = 'feedback' AND NOT EXISTS
                (SELECT 1 FROM events r WHERE r.kind='retract' AND r.target=e.id)
            ORDER BY e.seq
            """
        )
        return [dict(r) | {"messages": json.loads(r["messages"])} for r in rows]

    # -- bulk import ----------------------------------------------------------------------------
    def import_preferences(self, rows: Iterable[dict], *, source: str = "import", prompt_set: str = "",
                           origin: str = "import") -> int:
        """Store already-judged rows ({messages, chosen, rejected}, optional model_* and params_* with each
        side's provenance) in one transaction: all or nothing. The chosen side is stored as A."""
        count = 0
        now = time.time()
        with self._write() as db:
            for row in rows:
                pid = self._put_prompt(db, row["messages"], prompt_set)
                ga = self._put_generation(db, pid, row.get("model_chosen", "import"), row.get("params_chosen", {}),
                                          row["chosen"])
                gb = self._put_generation(db, pid, row.get("model_rejected", "import"),
                                          row.get("params_rejected", {}), row["rejected"])
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

    def register_model(self, name: str, path: Path, *, kind: str, base: str | None = None,
                       run_dir: Path | None = None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO model_versions(name, path, base, kind, run_dir, created)"
                " VALUES (?,?,?,?,?,?)",
                (name, str(path), base, kind, str(run_dir) if run_dir else None, time.time()),
            )

    def model_versions(self) -> list[dict]:
        return [dict(r) for r in self._conn().execute("SELECT * FROM model_versions ORDER BY created")]
