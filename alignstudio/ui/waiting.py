"""The Label and Feedback tabs between two items: while none is ready (sampling is behind the annotator, the
labeling queue is empty) the tab says what it waits for, its verdict buttons are off, and a timer asks again
until an item arrives. Waiting is a state, not an error: no red badges, and never a labeled item left on screen
with live buttons.

A tab's state is {"shown": item} with an item on screen, or {"shown": None, "waiting": key} while it waits: the
key lets only one of several requests for the next item (a timer tick, a skip, an API retry) hand one out.
"""

from __future__ import annotations

import uuid

import gradio as gr

from .render import escape_markdown_html

POLL_S = 2.0  # how often a waiting tab asks again
POLL_WAIT_S = 1.0  # how long one such request waits for an item (short: the timer asks again)


def skipped(count: int) -> tuple:
    """Every output left as it is."""
    return tuple(gr.skip() for _ in range(count))


def waiting() -> dict:
    return {"shown": None, "waiting": uuid.uuid4().hex}


def stopped(error: str) -> tuple[dict, str]:
    """(state, placeholder) when sampling gave up while the tab waited: the timer stops (asking again would start
    the failing sampling again, at a request per answer); Skip or new settings try again."""
    return {"shown": None}, placeholder(f"{error} Change the settings, or press Skip to try again.")


def placeholder(text: str) -> str:
    """What the item's place says while the tab waits (`text` may quote an error: escaped)."""
    return f"*{escape_markdown_html(text)}*"


def next_item(moved_on, state: dict, fetch, is_done):
    """The item after the one in `state`, once however many requests ask: `fetch()` for the first request to
    move on from a done item (`is_done(shown)`: labeled or rated) or from a wait, for any request when nothing
    was shown yet; None when there is nothing to move on from (not done yet) or another request already did.
    Raises what `fetch` raises (NothingReady: still nothing; the next request asks again)."""
    shown, key = state.get("shown"), state.get("waiting")
    if shown:
        return moved_on.once(shown["key"], fetch) if is_done(shown) else None
    if key:
        return moved_on.once(key, fetch)
    return fetch()


def settled(buttons: int, state: dict, live: bool) -> tuple:
    """The verdict buttons on only while an item that is not yet judged is on screen (`live`), and the timer on
    only while the tab waits: (button updates..., timer update)."""
    waits = not state.get("shown") and bool(state.get("waiting"))
    return (*(gr.update(interactive=live) for _ in range(buttons)), gr.Timer(active=waits))
