"""Thumbs up/down on single responses: the unpaired data KTO learns from.

Owns handing one prefetched response to an annotator (stored as a generation with its sampling parameters)
and recording the verdict as a feedback event with the same provenance as pairwise labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import UserError
from ..core.store import Store
from .prefetch import FeedConfig, FeedManager


@dataclass(frozen=True)
class ShownResponse:
    gen_id: str
    prompt: str
    text: str
    prompt_set: str = ""


class FeedbackService:
    def __init__(self, store: Store, feeds: FeedManager):
        self.store = store
        self.feeds = feeds

    def next_response(self, config: FeedConfig, timeout: float = 300.0) -> ShownResponse:
        if config.mode != "single":
            raise UserError("feedback needs a single-response feed")
        sample = self.feeds.feed(config).get(timeout=timeout)
        gen_id = self.store.add_generation(sample.messages, sample.text, model=sample.model, params=sample.params,
                                           prompt_set=sample.prompt_set)
        return ShownResponse(gen_id, sample.messages[-1]["content"], sample.text, sample.prompt_set)

    def rate(self, shown: ShownResponse, verdict: str, *, annotator: str, rationale: str = "") -> str:
        return self.store.add_feedback(shown.gen_id, verdict, annotator=annotator.strip(), source="human",
                                       rationale=rationale.strip())

    def undo(self, event_id: str, *, annotator: str) -> None:
        self.store.retract(event_id, annotator=annotator.strip())
