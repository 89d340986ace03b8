"""Label writes: preference and feedback events appended to the store, and their retraction.

Every write checks its input before touching the file, and a caller-chosen event id makes a retried write a
no-op (exactly once). Undo and relabel append a `retract` event: nothing is updated in place, so the full
history (who said what, when, seeing which side on the left) is kept. Only a label's owner may take it back
(`access.require_owner`). Reading the effective labels is `store_labels`'s; this module knows no queries.
"""

from __future__ import annotations

import time

from . import access
from .errors import UserError
from .store_file import StoreFile, new_id

VERDICTS = ("A", "B", "tie", "both_bad")
FEEDBACK = ("up", "down")
SIDES = ("A", "B")
STRENGTHS = ("much", "slight")  # a graded A/B verdict; None is a plain "better"


class EventId(str):
    """A written label's id, and whether this call stored it (`new`) or found it already stored under the same
    id (a retry, or a concurrent request with the same key that got there first), so nobody is told "stored"
    for a label the store did not take."""

    new: bool

    def __new__(cls, value: str, new: bool) -> "EventId":
        event_id = super().__new__(cls, value)
        event_id.new = new
        return event_id


class LabelEvents(StoreFile):
    """The label-event writes of `Store`."""

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
        strength: str | None = None,
        guidelines: str | None = None,
    ) -> EventId:
        """Append a preference label. With `edited_text`, the annotator rewrote the winning side: the
        rewrite is stored as a human-edited generation and exported as the chosen response. `strength`
        grades an A or B verdict: "much" or "slight" better (None: plain "better"). `guidelines`: the version of
        the labeling guidelines the pair was shown with (None: none)."""
        if verdict not in VERDICTS:
            raise UserError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        if strength is not None and strength not in STRENGTHS:
            raise UserError(f"strength must be one of {', '.join(STRENGTHS)} or empty, not {strength!r}")
        if strength is not None and verdict not in SIDES:
            raise UserError("only an A or B verdict has a strength (a tie or both bad has none)")
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
                return EventId(event_id, new=False)  # a retried write: already stored once
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
                " rationale, created, strength, guidelines) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    event_id,
                    "preference",
                    pair_id,
                    gen_id,
                    verdict,
                    shown_left,
                    annotator,
                    source,
                    rationale,
                    time.time(),
                    strength,
                    guidelines,
                ),
            )
        return EventId(event_id, new=True)

    def add_feedback(
        self,
        gen_id: str,
        verdict: str,
        *,
        annotator: str = "",
        source: str = "human",
        rationale: str = "",
        event_id: str | None = None,
        guidelines: str | None = None,
    ) -> EventId:
        if verdict not in FEEDBACK:
            raise UserError(f"feedback must be 'up' or 'down', not {verdict!r}")
        event_id = event_id or new_id()
        with self._write() as db:
            if db.execute("SELECT 1 FROM events WHERE id=?", (event_id,)).fetchone():
                return EventId(event_id, new=False)
            if db.execute("SELECT 1 FROM generations WHERE id=?", (gen_id,)).fetchone() is None:
                raise UserError(f"no generation with id {gen_id}")
            db.execute(
                "INSERT INTO events(id, kind, gen_id, verdict, annotator, source, rationale, created, guidelines)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (event_id, "feedback", gen_id, verdict, annotator, source, rationale, time.time(), guidelines),
            )
        return EventId(event_id, new=True)

    @staticmethod
    def _refuse_retract(db, event_id: str) -> None:
        """UserError where retracting `event_id` is not the caller's to do (no such label, someone else's, done)."""
        row = db.execute("SELECT kind, annotator FROM events WHERE id=?", (event_id,)).fetchone()
        access.require_owner(
            row["annotator"] if row and row["kind"] != "retract" else None, f"no label with id {event_id}"
        )
        if db.execute("SELECT 1 FROM events WHERE target=?", (event_id,)).fetchone():
            raise UserError(f"label {event_id} is already retracted")

    def check_retract(self, event_id: str) -> None:
        """What `retract` would refuse, without writing: a confirmation is asked only where the answer could be yes."""
        self._refuse_retract(self._conn(), event_id)

    def retract(self, event_id: str, *, annotator: str = "") -> str:
        """Cancel a label by appending a retract event (undo, or the first half of a relabel)."""
        with self._write() as db:
            self._refuse_retract(db, event_id)
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
            access.require_owner(old["annotator"] if old else None, f"no pairwise label with id {event_id}")
            if db.execute("SELECT 1 FROM events WHERE target=?", (event_id,)).fetchone():
                raise UserError(f"label {event_id} is already retracted")
            now = time.time()
            db.execute(
                "INSERT INTO events(id, kind, target, annotator, source, created) VALUES (?,?,?,?,?,?)",
                (new_id(), "retract", event_id, annotator, "human", now),
            )
            new = new_id()
            db.execute(
                "INSERT INTO events(id, kind, pair_id, verdict, shown_left, annotator, source, rationale, created,"
                " guidelines) VALUES (?,?,?,?,?,?,?,?,?,?)",  # a relabel keeps the guidelines the pair was seen with
                (
                    new,
                    "preference",
                    old["pair_id"],
                    verdict,
                    old["shown_left"],
                    annotator or old["annotator"],
                    old["source"],
                    f"relabel of {event_id}",
                    now,
                    old["guidelines"],
                ),
            )
        return new
