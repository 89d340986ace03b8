"""Browsing and fixing labels: the Data tab's table, filters, relabel/retract, and label records for checks.

Reads the store's effective labels into a pandas table; every fix is a new event (nothing is edited in place).
"""

from __future__ import annotations

import pandas as pd

from ...core import access
from ...core.errors import UserError
from ...core.store import Store
from ...core.store_events import VERDICTS

COLUMNS = [
    "event_id",
    "kind",
    "verdict",
    "source",
    "origin",
    "annotator",
    "prompt_set",
    "prompt",
    "response_a",
    "response_b",
    "edited",
    "shown_left",
    "rationale",
    "time",
]
# What the annotator saw: the response on each side and the verdict in those terms; the event id last.
SEEN_COLUMNS = [
    "time",
    "kind",
    "verdict",
    "prompt",
    "left",
    "right",
    "annotator",
    "source",
    "origin",
    "prompt_set",
    "edited",
    "rationale",
    "event_id",
]
# The stored form (verdicts about response A / B, with the side A was shown on), the event id last.
STORED_COLUMNS = [
    "time",
    "kind",
    "verdict",
    "shown_left",
    "prompt",
    "response_a",
    "response_b",
    "annotator",
    "source",
    "origin",
    "prompt_set",
    "edited",
    "rationale",
    "event_id",
]
# words, not emoji: emoji render as empty boxes where the browser's fonts lack them
SIDE_WORDS = {"tie": "tie", "both_bad": "both bad", "up": "thumbs up", "down": "thumbs down"}
# The Verdict filter speaks the table's language: the words shown (a label without recorded sides, from an import
# or a judge, reads "A is better"), or the stored names when the table shows the stored form.
SEEN_VERDICTS = ("left is better", "right is better", "A is better", "B is better", *SIDE_WORDS.values())
STORED_VERDICTS = (*VERDICTS, "up", "down")
ORIGINS = ("sampler", "synthetic", "import", "arena")  # how a pair was made (synthetic: two system prompts)


def label_table(
    store: Store,
    *,
    kind: str = "all",
    source: str = "",
    annotator: str = "",
    verdict: str = "",
    prompt_set: str = "",
    search: str = "",
    origin: str = "",
    seen_verdict: str = "",
    limit: int = 500,
) -> pd.DataFrame:
    """Effective labels, newest first, filtered; `search` matches prompt or response text (case-insensitive);
    `origin` keeps the pairs made one way (e.g. synthetic), whoever labeled them; `verdict` filters on the stored
    verdict, `seen_verdict` on the words the annotator saw (see `as_seen`)."""
    if verdict and verdict not in STORED_VERDICTS:
        raise UserError(f"Verdict must be one of {', '.join(STORED_VERDICTS)}, not {verdict!r}")
    if seen_verdict and seen_verdict not in SEEN_VERDICTS:
        raise UserError(f"Verdict must be one of {', '.join(SEEN_VERDICTS)}, not {seen_verdict!r}")
    rows = []
    if kind in ("all", "preference"):
        for r in store.preference_rows():
            rows.append(
                {
                    "event_id": r["event_id"],
                    "kind": "preference",
                    "verdict": r["verdict"],
                    "source": r["source"],
                    "origin": r["origin"],
                    "annotator": r["annotator"],
                    "prompt_set": r["prompt_set"],
                    "prompt": r["messages"][-1]["content"],
                    "response_a": r["text_a"],
                    "response_b": r["text_b"],
                    "edited": r["edited_text"] or "",
                    "shown_left": r["shown_left"] or "",
                    "rationale": r["rationale"],
                    "time": r["created"],
                }
            )
    if kind in ("all", "feedback"):
        for r in store.feedback_rows():
            rows.append(
                {
                    "event_id": r["event_id"],
                    "kind": "feedback",
                    "verdict": r["verdict"],
                    "source": r["source"],
                    "origin": "",
                    "annotator": r["annotator"],
                    "prompt_set": r["prompt_set"],
                    "prompt": r["messages"][-1]["content"],
                    "response_a": r["text"],
                    "response_b": "",
                    "edited": "",
                    "shown_left": "",
                    "rationale": r["rationale"],
                    "time": r["created"],
                }
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    mine = access.visible_annotator()
    if mine is not None:  # an annotator sees only their own labels
        frame = frame[frame["annotator"] == mine]
    for column, wanted in (
        ("source", source),
        ("annotator", annotator),
        ("verdict", verdict),
        ("prompt_set", prompt_set),
        ("origin", origin),
    ):
        if wanted:
            frame = frame[frame[column] == wanted]
    if search:
        needle = search.casefold()
        hit = (
            frame["prompt"].str.casefold().str.contains(needle, regex=False)
            | frame["response_a"].str.casefold().str.contains(needle, regex=False)
            | frame["response_b"].str.casefold().str.contains(needle, regex=False)
        )
        frame = frame[hit]
    if seen_verdict:
        words = [as_seen(v, left)[0] for v, left in zip(frame["verdict"], frame["shown_left"])]
        frame = frame[[w == seen_verdict for w in words]]
    frame = frame.sort_values("time", ascending=False).head(limit)
    frame["time"] = pd.to_datetime(frame["time"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame.reset_index(drop=True)


def as_seen(verdict: str, shown_left: str | None) -> tuple[str, str]:
    """A stored verdict in the words of the screen it was given on, and which stored response (A or B) was
    on the left: ("right is better", "B") for a pair stored as verdict A whose response B was shown left."""
    left = shown_left if shown_left in ("A", "B") else ""
    if verdict in ("A", "B"):
        if not left:  # no side order recorded (imports, judges): the stored names are all there is
            return f"{verdict} is better", "A"
        return ("left is better" if verdict == left else "right is better"), left
    return SIDE_WORDS.get(verdict, verdict), left or "A"


def browse_table(store: Store, *, stored: bool = False, **filters) -> pd.DataFrame:
    """The Data tab's table: `label_table`'s rows as the annotator saw them (left / right responses, the verdict
    as given, e.g. "right is better"), or with `stored` in the store's own A / B form. The event id is last.
    The `verdict` filter takes the words of the form shown (`SEEN_VERDICTS`, or `STORED_VERDICTS` with `stored`)."""
    if not stored:
        filters["seen_verdict"] = filters.pop("verdict", "") or ""
    frame = label_table(store, **filters)
    if stored:
        return frame[STORED_COLUMNS].reset_index(drop=True)
    seen = []
    for row in frame.to_dict("records"):
        words, left = as_seen(row["verdict"], row["shown_left"])
        swap = row["kind"] == "preference" and left == "B"
        seen.append(
            row
            | {
                "verdict": words,
                "left": row["response_b"] if swap else row["response_a"],
                "right": row["response_a"] if swap else row["response_b"],
            }
        )
    return pd.DataFrame(seen, columns=SEEN_COLUMNS)


def relabel(store: Store, event_id: str, verdict: str, *, annotator: str) -> str:
    """Replace a pairwise label with a new verdict: a retract and a new label, in one transaction. `verdict` is
    stored form (A, B, tie, both_bad) or as seen: "left" / "right" name the response the annotator saw on that
    side (a label with no recorded sides has none: use A or B)."""
    if verdict in ("left", "right"):
        label = next((x for x in store.labels() if x.id == event_id), None)
        if label is None:
            raise UserError(f"no pairwise label with id {event_id} (retracted or unknown)")
        if label.shown_left not in ("A", "B"):
            raise UserError("this label records no left and right (an import or a judge): relabel it as A or B")
        other = "B" if label.shown_left == "A" else "A"
        verdict = label.shown_left if verdict == "left" else other
    if verdict not in VERDICTS:
        raise UserError(f"verdict must be left, right or one of {', '.join(VERDICTS)}")
    return store.relabel(event_id, verdict, annotator=annotator)


def label_records(store: Store) -> list[dict]:
    """Pairwise label records in the validator's shape (position bias, annotator and judge agreement)."""
    return [
        {
            "pair_id": r["pair_id"],
            "annotator": r["annotator"],
            "source": r["source"],
            "verdict": r["verdict"],
            "left": r["shown_left"],
        }
        for r in store.preference_rows()
    ]  # left None: sides not recorded
