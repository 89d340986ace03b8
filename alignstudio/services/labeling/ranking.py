"""Ranking K answers (2 to 4) to one prompt: hand them out in random order, store the ranking once.

The number of answers is a setting per campaign (a prompt set; 2, a plain pair, unless an admin sets more).
Every showing carries a fresh key, the id the ranking is stored under, so a double submit or an API retry
stores nothing twice (`exactly_once`). A stored ranking is one `rankings` row and its K(K-1)/2 pairs
(core/store_rankings.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ...core import access
from ...core.errors import UserError
from ...core.store import Store
from ...core.store_file import new_id
from ...core.store_rankings import MAX_ANSWERS, MIN_ANSWERS, pair_count
from ..limits import NAME_CHARS, check_length
from ..sampling.answers import RankConfig, RankFeeds
from .exactly_once import MoveOn


@dataclass(frozen=True)
class ShownRanking:
    key: str  # fresh per showing: the id the ranking is stored under
    prompt: str  # the last user turn
    prompt_set: str
    gen_ids: list[str]  # in the order shown (answer 1 first)
    texts: list[str]
    history: list[dict] | None = None  # earlier turns of a conversation


@dataclass(frozen=True)
class RankAck:
    ranking_id: str
    pairs: int
    duplicate: bool


def _shown(messages: list[dict], prompt_set: str, gen_ids: list[str], texts: list[str]) -> ShownRanking:
    history = [m for m in messages[:-1] if m.get("role") != "system"] or None
    return ShownRanking(new_id(), messages[-1]["content"], prompt_set, gen_ids, texts, history)


class RankingService:
    def __init__(self, store: Store, feeds: RankFeeds, rng: random.Random | None = None):
        self.store = store
        self.feeds = feeds
        self.rng = rng or random.Random()
        self.moved_on = MoveOn()

    def answers_for(self, prompt_set: str) -> int:
        """Answers per prompt for this prompt set (2: pairwise labeling)."""
        return self.store.answers_for(prompt_set)

    def set_answers(self, prompt_set: str, answers: int) -> int:
        """Set how many answers the Label tab shows per prompt of this prompt set (admins only)."""
        access.require_admin("set the answers per prompt")
        if not prompt_set:
            raise UserError("choose a prompt set first")
        self.store.set_answers(prompt_set, int(answers))
        return int(answers)

    def next_ranking(self, config: RankConfig, timeout: float = 300.0, restart: bool = True) -> ShownRanking:
        """K prefetched answers to one prompt, stored (unranked) as they are handed out, in random order."""
        if not MIN_ANSWERS < config.answers <= MAX_ANSWERS:
            raise UserError(f"answers per prompt must be 3 to {MAX_ANSWERS} for a ranking, not {config.answers}")
        sample = self.feeds.feed(config, restart).get(timeout=timeout)
        gen_ids = self.store.add_answers(
            sample.messages, sample.texts, models=sample.models, params=sample.params, prompt_set=sample.prompt_set
        )
        order = list(range(len(gen_ids)))
        self.rng.shuffle(order)
        return _shown(sample.messages, sample.prompt_set, [gen_ids[i] for i in order], [sample.texts[i] for i in order])

    def rank(self, shown: ShownRanking, order: list[int], *, annotator: str) -> RankAck:
        """Store the ranking of the answers shown: `order` holds their positions on screen (0-based), best first."""
        annotator = annotator.strip()
        check_length(annotator, "the annotator name", NAME_CHARS)
        if sorted(order) != list(range(len(shown.gen_ids))):
            raise UserError(f"rank all {len(shown.gen_ids)} answers, each once (got {order})")
        ranked = [shown.gen_ids[i] for i in order]
        ranking_id, new = self.store.add_ranking(
            ranked, annotator=annotator, source="human", shown=list(shown.gen_ids), event_id=shown.key
        )
        return RankAck(ranking_id, pair_count(len(ranked)), duplicate=not new)

    def is_ranked(self, shown: ShownRanking) -> bool:
        return bool(shown.key) and self.store.ranking(shown.key) is not None

    def undo_last(self, annotator: str) -> ShownRanking:
        """Take back this annotator's newest ranking (and its pairs); its answers again, as shown, to rank anew."""
        last = self.store.last_ranking(annotator.strip())
        if last is None:
            raise UserError("no ranking to undo")
        self.store.retract_ranking(last.id, annotator=annotator.strip())
        gen_ids = last.shown or last.gen_ids
        messages, _, prompt_set = self.store.generation(gen_ids[0])
        return _shown(messages, prompt_set, gen_ids, [self.store.generation_text(g) for g in gen_ids])

    def ready(self, config: RankConfig) -> int:
        return self.feeds.feed(config).ready()
