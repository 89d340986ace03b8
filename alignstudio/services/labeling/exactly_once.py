"""Idempotency for what a person does once per item on screen: label it, then move on from it.

Every item handed to an annotator (a pair, a response, an arena turn) carries a fresh key. The key is the
id of the label stored for it, so the store keeps a label for a key at most once (a double click, a
repeated key press or an API retry stores nothing new), and `MoveOn.first` lets only the first of several
"next item" requests for the same key hand out a new item.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Ack:
    """The answer to a label: stored, or already stored under the same key (a double click or a retry)."""

    event_id: str
    verdict: str
    duplicate: bool
    strength: str | None = None  # "much" | "slight" for a graded verdict


def already_stored(store, key: str) -> Ack | None:
    """The acknowledgement of the label already stored under `key` (a second click or a retry), or None."""
    earlier = store.label(key)
    return Ack(earlier.id, earlier.verdict, duplicate=True, strength=earlier.strength) if earlier is not None else None


def acknowledge(store, event_id, verdict: str, strength: str | None = None) -> Ack:
    """The answer to a label written under its key: what this call stored or, when a concurrent request with the
    same key stored first (the store's `EventId.new` is False), what is stored, said as already stored."""
    if getattr(event_id, "new", True):
        return Ack(event_id, verdict, duplicate=False, strength=strength)
    return already_stored(store, event_id)


def is_stored(store, key: str) -> bool:
    """Whether the item shown under `key` has its label (pair verdict, rating or vote) stored."""
    return bool(key) and store.label(key) is not None


class MoveOn:
    """Keys whose "next item" has been handed out; bounded, as keys are never reused."""

    def __init__(self, remember: int = 100_000):
        self._done: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()

    def once(self, key: str, fetch):
        """`fetch()` for the first request to move on from `key`; None for every later one. A fetch that fails
        is forgotten, so the next request (a retry) fetches again."""
        if not self.first(key):
            return None
        try:
            return fetch()
        except BaseException:
            with self._lock:
                self._done.pop(key, None)
            raise

    def first(self, key: str) -> bool:
        """True for the first call with this key, False for every later one."""
        with self._lock:
            if key in self._done:
                return False
            self._done[key] = None
            while len(self._done) > self._remember:
                self._done.popitem(last=False)
            return True
