"""Thumbs up/down on single responses: the unpaired data KTO learns from.

Owns handing one prefetched response to an annotator (stored as a generation with its sampling parameters)
and recording the verdict as a feedback event with the same provenance as pairwise labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.errors import UserError
from ...core.store import Store
from ...core.store_file import new_id
from ..limits import NAME_CHARS, REASON_CHARS, check_length
from ..sampling.prefetch import FeedConfig, FeedManager
from .exactly_once import Ack, MoveOn, acknowledge, already_stored, is_stored
from .guidelines import GuidelinesService


@dataclass(frozen=True)
class ShownResponse:
    gen_id: str
    prompt: str
    text: str
    prompt_set: str = ""
    key: str = ""  # fresh per showing: the id of the rating stored for it (idempotency key)
    guidelines: str = ""  # the guidelines version current when it was handed out ("" none): its rating records it
    history: tuple = ()  # a conversation's turns before `prompt` ({role, content}), shown above the response


class FeedbackService:
    def __init__(self, store: Store, feeds: FeedManager):
        self.store = store
        self.feeds = feeds
        self.moved_on = MoveOn()
        self.guidelines = GuidelinesService(store)

    def next_response(self, config: FeedConfig, timeout: float = 300.0, restart: bool = True) -> ShownResponse:
        if config.mode != "single":
            raise UserError("feedback needs a single-response feed")
        sample = self.feeds.feed(config, restart).get(timeout=timeout)
        gen_id = self.store.add_generation(
            sample.messages, sample.text, model=sample.model, params=sample.params, prompt_set=sample.prompt_set
        )
        guidelines = self.guidelines.version_for(sample.prompt_set)
        return ShownResponse(
            gen_id,
            sample.messages[-1]["content"],
            sample.text,
            sample.prompt_set,
            new_id(),
            guidelines,
            history=tuple(sample.messages[:-1]),
        )

    def rate(self, shown: ShownResponse, verdict: str, *, annotator: str, rationale: str = "") -> Ack:
        check_length(annotator.strip(), "the annotator name", NAME_CHARS)
        check_length(rationale.strip(), "the reason", REASON_CHARS)
        key = shown.key or new_id()
        earlier = already_stored(self.store, key)
        if earlier is not None:  # the same showing rated twice (double click, retry): keep the first rating
            return earlier
        event_id = self.store.add_feedback(
            shown.gen_id,
            verdict,
            annotator=annotator.strip(),
            source="human",
            rationale=rationale.strip(),
            event_id=key,
            guidelines=shown.guidelines or None,
        )
        return acknowledge(self.store, event_id, verdict)

    def is_rated(self, shown: ShownResponse) -> bool:
        return is_stored(self.store, shown.key)

    def last(self, annotator: str):
        """This annotator's newest effective rating (a `Label`), or None."""
        return self.store.last_label(annotator.strip(), "feedback")

    def count(self, annotator: str) -> int:
        """This annotator's effective ratings."""
        return self.store.label_count(annotator.strip(), "feedback")

    def ready(self, config: FeedConfig) -> int:
        return self.feeds.feed(config).ready()

    def undo_last(self, annotator: str) -> ShownResponse:
        """Take back this annotator's newest rating and show its response again (fresh key), to redo it."""
        last = self.store.last_label(annotator.strip(), "feedback")
        if last is None:
            raise UserError("nothing to undo")
        self.store.retract(last.id, annotator=annotator.strip())
        messages, text, prompt_set = self.store.generation(last.gen_id)
        return ShownResponse(
            last.gen_id,
            messages[-1]["content"],
            text,
            prompt_set,
            new_id(),
            self.guidelines.version_for(prompt_set),
            history=tuple(messages[:-1]),
        )
