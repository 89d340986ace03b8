"""Labeling guidelines in the store: markdown per campaign, every edit a new version, none ever overwritten.

A campaign is a prompt set, "queue" (the labeling queue), or "" (the guidelines of every campaign that has none of
its own). A version is a short hash of the text, so the same text is the same version wherever it is saved; the
newest save of a campaign is its current version. Labels record the version they were given under (the events'
`guidelines` column, written by the label writes); nothing here ever rewrites a label. Also which versions each
annotator has been shown open once (after that the app shows them collapsed). Who may save is the service's rule.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from .store_file import StoreFile

DEFAULT_CAMPAIGN = ""  # the guidelines of every campaign without its own


def version_of(text: str) -> str:
    """The short content hash that names a version: 8 hex digits of the text's sha256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class GuidelinesVersion:
    campaign: str
    version: str
    text: str
    author: str
    created: float


class GuidelinesStore:
    """The guidelines tables of one store file."""

    def __init__(self, store: StoreFile):
        self.store = store

    @staticmethod
    def _row(row) -> GuidelinesVersion:
        return GuidelinesVersion(row["campaign"], row["version"], row["text"], row["author"], row["created"])

    def save(self, campaign: str, text: str, author: str = "") -> GuidelinesVersion:
        """Make `text` the campaign's current version (a new row; the same text as the current one adds none)."""
        version = version_of(text)
        with self.store._write() as db:
            row = db.execute(
                "SELECT * FROM guidelines WHERE campaign=? ORDER BY seq DESC LIMIT 1", (campaign,)
            ).fetchone()
            if row is not None and row["version"] == version:
                return self._row(row)
            saved = GuidelinesVersion(campaign, version, text, author, time.time())
            db.execute(
                "INSERT INTO guidelines(campaign, version, text, author, created) VALUES (?,?,?,?,?)",
                (saved.campaign, saved.version, saved.text, saved.author, saved.created),
            )
        return saved

    def own(self, campaign: str) -> GuidelinesVersion | None:
        """The campaign's own newest version (no fallback to the default guidelines), or None."""
        row = (
            self.store._conn()
            .execute("SELECT * FROM guidelines WHERE campaign=? ORDER BY seq DESC LIMIT 1", (campaign,))
            .fetchone()
        )
        return self._row(row) if row else None

    def current(self, campaign: str) -> GuidelinesVersion | None:
        """The version a label in `campaign` is given under now: its own, else the default one, else None."""
        return self.own(campaign) or (self.own(DEFAULT_CAMPAIGN) if campaign != DEFAULT_CAMPAIGN else None)

    def version(self, version: str) -> GuidelinesVersion | None:
        """The newest save of a version (by its hash), or None."""
        row = (
            self.store._conn()
            .execute("SELECT * FROM guidelines WHERE version=? ORDER BY seq DESC LIMIT 1", (version,))
            .fetchone()
        )
        return self._row(row) if row else None

    def history(self, campaign: str | None = None) -> list[GuidelinesVersion]:
        """Every save, newest first (of one campaign, or of all)."""
        where, args = ("WHERE campaign=?", (campaign,)) if campaign is not None else ("", ())
        rows = self.store._conn().execute(f"SELECT * FROM guidelines {where} ORDER BY seq DESC", args)
        return [self._row(r) for r in rows]

    def mark_read(self, annotator: str, version: str) -> bool:
        """Record that `annotator` was shown `version` open; True the first time."""
        with self.store._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO guidelines_read(annotator, version, created) VALUES (?,?,?)",
                (annotator, version, time.time()),
            )
            return cursor.rowcount == 1
