"""The store's file: its schema, its connections and its write transactions; nothing about what a row means.

An append-only SQLite database in WAL mode, safe for many threads and processes: one connection per thread,
`synchronous=FULL`, so a write returns only after its transaction is committed on disk and an acknowledged
label survives a crash. Writers (threads and processes) queue on an exclusive `flock` of a side file
(`<store>.writelock`) before they open their transaction: the kernel wakes the next writer the moment the lock
is free, where SQLite's own busy handler would sleep and poll (1, 2, 5, ... 100 ms), which gave concurrent
writers a tail of up to seconds. SQLite's locking still guards the data; the flock only orders our writers.
Also the two row inserts every kind of write shares (a prompt by content hash, a generation).
It knows nothing about labels' rules, models, datasets or the UI.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from .errors import UserError

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
    created REAL NOT NULL,
    strength TEXT                   -- graded preference: much | slight, NULL for a plain "better" (or none)
);
CREATE INDEX IF NOT EXISTS events_pair ON events(pair_id);
CREATE INDEX IF NOT EXISTS events_target ON events(target);
CREATE TABLE IF NOT EXISTS rankings (
    id TEXT PRIMARY KEY,            -- the ranking's event id (caller-chosen: a retry stores nothing twice), and the
                                    -- group id of the pairs it expands to
    prompt_id TEXT NOT NULL REFERENCES prompts(id),
    gen_ids TEXT NOT NULL,          -- JSON list of generation ids in rank order, best first
    shown TEXT,                     -- JSON list of the same ids in the order they were shown
    annotator TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,           -- human | import | ...
    created REAL NOT NULL           -- retracted by a `retract` event whose target is this id
);
CREATE TABLE IF NOT EXISTS campaign_answers (
    campaign TEXT PRIMARY KEY,      -- a prompt set's name
    answers INTEGER NOT NULL,       -- answers shown per prompt in the Label tab: 2 (a pair) to 4 (a ranking)
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS guidelines (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- every save is a row: the newest per campaign is current
    campaign TEXT NOT NULL,         -- a prompt set, 'queue', or '' for every campaign without its own
    version TEXT NOT NULL,          -- short content hash of the text
    text TEXT NOT NULL,             -- markdown
    author TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS guidelines_read (
    annotator TEXT NOT NULL,
    version TEXT NOT NULL,          -- shown open to this annotator once: collapsed for them afterwards
    created REAL NOT NULL,
    PRIMARY KEY (annotator, version)
);
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

# Columns added after a table's first release: (table, column, declaration). A store file made before one was
# added gets it on open (`_migrate`), NULL in its old rows, so every existing label is kept as it was.
_ADDED_COLUMNS = (
    ("events", "strength", "TEXT"),
    ("events", "group_id", "TEXT"),  # group_id: its ranking
    ("events", "guidelines", "TEXT"),  # the guidelines version (short hash) shown with the item
)


def new_id() -> str:
    return uuid.uuid4().hex


def prompt_id(messages: list[dict]) -> str:
    canonical = json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


class StoreFile:
    """Thread-safe handle on the store file; one SQLite connection per thread. `Store` adds what rows mean."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".writelock")
        self._local = threading.local()
        self._writer = threading.Lock()  # this handle's threads queue here (one wakes per release), then on flock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(_SCHEMA)  # idempotent DDL; executescript commits by itself
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise UserError(f"cannot open the store {self.path}: {exc}") from None

    def _migrate(self) -> None:
        """Add the columns an older store file lacks, under the write lock: two processes opening the same old
        file add each column once."""
        conn = self._conn()
        missing = [
            added for added in _ADDED_COLUMNS if added[1] not in self._columns(conn, added[0])
        ]  # checked first without the lock: a current file (the usual case) takes no write lock to open
        if not missing:
            return
        with self._write() as db:
            for table, column, declaration in missing:
                if column not in self._columns(db, table):  # another process may have added it meanwhile
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    @staticmethod
    def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}

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
            if isinstance(exc, sqlite3.OperationalError) and (
                "full" in str(exc) or "disk" in str(exc) or "readonly" in str(exc)
            ):
                # nothing was written; say why in one line instead of a traceback
                raise UserError(f"the store could not be written ({exc}); free disk space and try again") from None
            if exc_type is None:
                raise exc

    def _write(self) -> "StoreFile._Tx":
        return StoreFile._Tx(self._conn(), self._lock_fd(), self._writer)

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

    # -- rows every kind of write shares ---------------------------------------------------------
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
            "INSERT INTO generations(id, prompt_id, model, params, text, edited_from, created) VALUES (?,?,?,?,?,?,?)",
            (gid, pid, model, json.dumps(params, sort_keys=True), text, edited_from, time.time()),
        )
        return gid
