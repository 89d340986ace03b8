"""Browsing and fixing labels: the Data tab's table, filters, relabel/retract, and label records for checks.

Reads the store's effective labels into a pandas table; every fix is a new event (nothing is edited in place).
"""

from __future__ import annotations

import pandas as pd

from ..core import access
from ..core.errors import UserError
from ..core.store import VERDICTS, Store

COLUMNS = ["event_id", "kind", "verdict", "source", "origin", "annotator", "prompt_set", "prompt", "response_a",
           "response_b", "edited", "shown_left", "rationale", "time"]
ORIGINS = ("sampler", "synthetic", "import", "arena")  # how a pair was made (synthetic: two system prompts)


def label_table(store: Store, *, kind: str = "all", source: str = "", annotator: str = "", verdict: str = "",
                prompt_set: str = "", search: str = "", origin: str = "", limit: int = 500) -> pd.DataFrame:
    """Effective labels, newest first, filtered; `search` matches prompt or response text (case-insensitive);
    `origin` keeps the pairs made one way (e.g. synthetic), whoever labeled them."""
    rows = []
    if kind in ("all", "preference"):
        for r in store.preference_rows():
            rows.append({"event_id": r["event_id"], "kind": "preference", "verdict": r["verdict"],
                         "source": r["source"], "origin": r["origin"], "annotator": r["annotator"],
                         "prompt_set": r["prompt_set"],
                         "prompt": r["messages"][-1]["content"], "response_a": r["text_a"],
                         "response_b": r["text_b"], "edited": r["edited_text"] or "",
                         "shown_left": r["shown_left"] or "", "rationale": r["rationale"], "time": r["created"]})
    if kind in ("all", "feedback"):
        for r in store.feedback_rows():
            rows.append({"event_id": r["event_id"], "kind": "feedback", "verdict": r["verdict"], "source": r["source"],
                         "origin": "", "annotator": r["annotator"], "prompt_set": r["prompt_set"],
                         "prompt": r["messages"][-1]["content"], "response_a": r["text"], "response_b": "",
                         "edited": "", "shown_left": "", "rationale": r["rationale"], "time": r["created"]})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    mine = access.visible_annotator()
    if mine is not None:  # an annotator sees only their own labels
        frame = frame[frame["annotator"] == mine]
    for column, wanted in (("source", source), ("annotator", annotator), ("verdict", verdict),
                           ("prompt_set", prompt_set), ("origin", origin)):
        if wanted:
            frame = frame[frame[column] == wanted]
    if search:
        needle = search.casefold()
        hit = (frame["prompt"].str.casefold().str.contains(needle, regex=False)
               | frame["response_a"].str.casefold().str.contains(needle, regex=False)
               | frame["response_b"].str.casefold().str.contains(needle, regex=False))
        frame = frame[hit]
    frame = frame.sort_values("time", ascending=False).head(limit)
    frame["time"] = pd.to_datetime(frame["time"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame.reset_index(drop=True)


def relabel(store: Store, event_id: str, verdict: str, *, annotator: str) -> str:
    """Replace a pairwise label with a new verdict: a retract and a new label, in one transaction."""
    if verdict not in VERDICTS:
        raise UserError(f"verdict must be one of {', '.join(VERDICTS)}")
    return store.relabel(event_id, verdict, annotator=annotator)


def label_records(store: Store) -> list[dict]:
    """Pairwise label records in the validator's shape (position bias, annotator and judge agreement)."""
    return [{"pair_id": r["pair_id"], "annotator": r["annotator"], "source": r["source"], "verdict": r["verdict"],
             "left": r["shown_left"]} for r in store.preference_rows() if r["shown_left"]]
