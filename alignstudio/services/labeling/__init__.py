"""Pairwise labeling: hand a pair to an annotator with a random side order, record the verdict.

Owns the mapping between what the annotator saw (left / right) and the stored pair (A / B), so the side
order is randomized per pair and recorded with every label (position bias can be measured later).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from ...core.errors import UserError
from ...core.label_queue import LabelQueue
from ...core.store import Store
from ...core.store_file import new_id
from ..campaigns import CampaignService
from ..limits import ANSWER_CHARS, NAME_CHARS, PROMPT_CHARS, REASON_CHARS, check_length
from ..sampling.prefetch import FeedConfig, FeedManager, NothingReady
from ..sampling.sampler import Generator, sample_pair
from ..sampling.settings import SamplingSettings
from .exactly_once import Ack, MoveOn, acknowledge, already_stored, is_stored
from .guidelines import GuidelinesService

CHOICES = ("left", "right", "tie", "both_bad")


@dataclass(frozen=True)
class ShownPair:
    pair_id: str
    prompt: str  # last user turn, for display
    left: str
    right: str
    shown_left: str  # "A" or "B": which stored response is on the left
    prompt_set: str = ""
    queued: bool = False  # handed out by the labeling queue (completed when labeled)
    claimed: bool = False  # claimed in a prompt-set campaign with several annotators per pair (finished when labeled)
    key: str = ""  # fresh per showing: the id of the label stored for it (idempotency key)
    guidelines: str = ""  # the guidelines version current when it was handed out ("" none): its label records it
    history: tuple = ()  # a conversation's turns before `prompt` ({role, content}), shown above the answers

    def side(self, which: str) -> str:
        """Stored side (A/B) of the response shown on `which` (left/right)."""
        if which == "left":
            return self.shown_left
        return "B" if self.shown_left == "A" else "A"


VERDICT_WORDS = {"A": "A is better", "B": "B is better", "tie": "tie", "both_bad": "both bad"}


STRENGTH_WORDS = {"much": "much better", "slight": "slightly better"}


def seen_as(shown_left: str | None, verdict: str, strength: str | None = None) -> str:
    """A stored verdict in the words of the annotator's screen (A is the left response as shown)."""
    if verdict in ("A", "B") and shown_left == "B":
        verdict = "B" if verdict == "A" else "A"
    words = VERDICT_WORDS.get(verdict, verdict)
    return words.replace("better", STRENGTH_WORDS[strength]) if strength in STRENGTH_WORDS else words


def verdict_for(shown: ShownPair, choice: str) -> str:
    if choice not in CHOICES:
        raise UserError(f"choice must be one of {', '.join(CHOICES)}, not {choice!r}")
    return shown.side(choice) if choice in ("left", "right") else choice


class LabelingService:
    def __init__(self, store: Store, feeds: FeedManager, rng: random.Random | None = None):
        self.store = store
        self.feeds = feeds
        self.rng = rng or random.Random()
        self.queue = LabelQueue(store)
        self.campaigns = CampaignService(self.queue.campaigns, feeds.prompt_sets if feeds is not None else None)
        self.moved_on = MoveOn()
        self.guidelines = GuidelinesService(store)

    def _show(
        self,
        pair_id: str,
        prompt: str,
        text_a: str,
        text_b: str,
        prompt_set: str,
        queued: bool = False,
        shown_left: str | None = None,
        history: list[dict] | tuple = (),
    ) -> ShownPair:
        """The pair with a fresh key, sides in random order unless `shown_left` keeps an earlier one; `history`:
        the conversation before the last user turn `prompt`."""
        shown_left = shown_left if shown_left in ("A", "B") else self.rng.choice(("A", "B"))
        left, right = (text_a, text_b) if shown_left == "A" else (text_b, text_a)
        guidelines = self.guidelines.version_for(prompt_set, queued)
        return ShownPair(
            pair_id,
            prompt,
            left,
            right,
            shown_left,
            prompt_set,
            queued,
            key=new_id(),
            guidelines=guidelines,
            history=tuple(history),
        )

    def _show_stored(self, pair_id: str, pair, prompt_set: str, **show) -> ShownPair:
        """`_show` for a pair with its conversation (a stored or sampled pair): the last turn is the prompt shown,
        the turns before it its history."""
        messages = pair.messages
        return self._show(
            pair_id, messages[-1]["content"], pair.text_a, pair.text_b, prompt_set, history=messages[:-1], **show
        )

    def next_queued(self, annotator: str) -> ShownPair:
        """The next pair from the labeling queue (most informative first), claimed for this annotator."""
        item = self.queue.claim(annotator)
        if item is None:
            raise NothingReady(
                "the labeling queue is empty: fill it with the Fill the queue button (or `alignstudio "
                "queue`), or label fresh samples"
            )
        pair = self.store.pair(item[0])
        return self._show_stored(pair.id, pair, pair.prompt_set or "queue", queued=True)

    def next_pair(
        self, config: FeedConfig, timeout: float = 300.0, restart: bool = True, annotator: str = ""
    ) -> ShownPair:
        """The next prefetched pair for this configuration, stored (unlabeled) as it is handed out (`restart`:
        see `FeedManager.feed`). With several annotators per pair in the prompt set's campaign, a pair others
        labeled that still needs `annotator` comes first, and a new one is claimed for them (`services.campaigns`)."""
        waiting = self.campaigns.pending_pair(annotator, config.prompt_set)
        if waiting is not None:
            pair = self.store.pair(waiting)
            return replace(self._show_stored(pair.id, pair, pair.prompt_set), claimed=True)
        pair = self.feeds.feed(config, restart).get(timeout=timeout)
        pair_id = self._store(pair, pair.messages, pair.prompt_set)
        shown = self._show_stored(pair_id, pair, pair.prompt_set)
        return replace(shown, claimed=self.campaigns.hand_out(pair_id, annotator, config.prompt_set))

    def _store(self, pair, messages: list[dict], prompt_set: str) -> str:
        """A sampled pair stored (unlabeled) with its models and settings; its id."""
        return self.store.add_pair(
            messages,
            pair.text_a,
            pair.text_b,
            model_a=pair.model_a,
            model_b=pair.model_b,
            params_a=pair.params_a,
            params_b=pair.params_b,
            prompt_set=prompt_set,
            origin=pair.origin,
        )

    def typed_pair(self, prompt: str, config: FeedConfig) -> ShownPair:
        """A pair for a prompt the user typed, from the models the sampling settings name."""
        check_length(prompt.strip(), "the prompt", PROMPT_CHARS)  # before any model is loaded
        gen_a = self.feeds.pool.get(config.model_a)
        gen_b = self.feeds.pool.get(config.model_b) if config.model_b else None
        return self.pair_for_prompt(prompt, config.settings, gen_a, gen_b)

    def pair_for_prompt(
        self, prompt: str, settings: SamplingSettings, gen_a: Generator, gen_b: Generator | None = None
    ) -> ShownPair:
        """A pair for a prompt the user typed in (sampled now, not from the queue)."""
        if not prompt.strip():
            raise UserError("type a prompt first")
        check_length(prompt.strip(), "the prompt", PROMPT_CHARS)
        messages = [{"role": "user", "content": prompt.strip()}]
        pair = sample_pair(messages, settings, gen_a, gen_b, prompt_set="typed")
        if pair is None:
            raise UserError("the model gave near-identical answers every time; try a higher temperature")
        pair_id = self._store(pair, messages, "typed")
        return self._show(pair_id, prompt.strip(), pair.text_a, pair.text_b, "typed")

    def label(
        self, shown: ShownPair, choice: str, *, annotator: str, rationale: str = "", strength: str | None = None
    ) -> Ack:
        """Store the verdict on the pair shown; `strength` ("much" or "slight") grades a left/right choice."""
        return self._record(shown, verdict_for(shown, choice), annotator, rationale, strength=strength)

    def label_edited(
        self, shown: ShownPair, edited_side: str, edited_text: str, *, annotator: str, rationale: str = ""
    ) -> Ack:
        """The annotator rewrote the response on `edited_side` into a better one: it becomes chosen."""
        if edited_side not in ("left", "right"):
            raise UserError("choose which response you edited: left or right")
        return self._record(shown, shown.side(edited_side), annotator, rationale, edited_text=edited_text)

    def _record(
        self, shown: ShownPair, verdict: str, annotator: str, rationale: str, strength: str | None = None, **extra
    ) -> Ack:
        check_length(annotator.strip(), "the annotator name", NAME_CHARS)
        check_length(rationale.strip(), "the reason", REASON_CHARS)
        check_length(extra.get("edited_text"), "the better answer", ANSWER_CHARS)
        key = shown.key or new_id()  # a ShownPair made outside _show (scripts) has no key: label it once
        earlier = already_stored(self.store, key)
        if earlier is not None:  # the same showing labeled twice: keep the first verdict, store nothing
            return earlier
        event_id = self.store.add_preference(
            shown.pair_id,
            verdict,
            annotator=annotator.strip(),
            source="human",
            shown_left=shown.shown_left,
            rationale=rationale.strip(),
            event_id=key,
            strength=strength,
            guidelines=shown.guidelines or None,  # as shown: a version saved meanwhile is not this label's
            **extra,
        )
        if shown.queued or shown.claimed:  # after the label is stored: a crash in between re-offers the item
            self.queue.complete(shown.pair_id, annotator.strip())
        return acknowledge(self.store, event_id, verdict, strength)

    def ready(self, config: FeedConfig) -> int:
        """Pairs sampled ahead for this configuration."""
        return self.feeds.feed(config).ready()

    def progress(self, prompt_set: str) -> tuple[int, int]:
        """(prompts of the set with a human label, prompts in the set)."""
        return (self.store.labeled_prompts(prompt_set), len(self.feeds.prompt_sets.load(prompt_set)))

    def is_labeled(self, shown: ShownPair) -> bool:
        return is_stored(self.store, shown.key)

    def count(self, annotator: str) -> int:
        """This annotator's effective pairwise labels."""
        return self.store.label_count(annotator.strip(), "preference")

    def last(self, annotator: str):
        """This annotator's newest effective pairwise label (a `Label`), or None."""
        return self.store.last_label(annotator.strip(), "preference")

    def scorer(self, by: str):
        """The margin function of the Label tab's queue order, "reward" or "policy" (`active.queue_scorer`)."""
        from .active import queue_scorer

        return queue_scorer(self.feeds.pool, by)

    def fill_queue(self, score, progress=None) -> tuple[int, set[str]]:
        """Queue every pair without a human label by `score` (see `active.scorer`), most uncertain first."""
        from .active import fill_queue_by

        return fill_queue_by(self.store, score, progress)

    def undo_last(self, annotator: str) -> ShownPair:
        """Take back this annotator's newest label and show its pair again (with a fresh key), to redo it."""
        last = self.store.last_label(annotator.strip(), "preference")
        if last is None:
            raise UserError("nothing to undo")
        self.store.retract(last.id, annotator=annotator.strip())
        claimed = self.queue.campaigns.release(last.pair_id, annotator)  # counted again once labeled anew
        pair = self.store.pair(last.pair_id)  # shown with the same side order, so it looks as it did
        shown = self._show_stored(pair.id, pair, pair.prompt_set, shown_left=last.shown_left)
        return replace(shown, claimed=claimed)
