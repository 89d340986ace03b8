"""K answers per prompt, for ranking: K generations from one batched decode, near-duplicates resampled.

Answers alternate between the two sampling sides (A: model A at temperature A, B: model B or A at temperature
B, each with its own system prompt), so a ranking compares what a pair would, K at a time. `RankFeeds` keeps
samples ready as `prefetch.FeedManager` does for pairs, one feed per (configuration, K).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

from .. import remote_budget
from .prefetch import Feed, FeedConfig, FeedManager
from .sampler import Discarded, _complete_many, similarity, with_system
from .settings import SamplingSettings


@dataclass
class SampledAnswers:
    messages: list[dict]
    texts: list[str]
    models: list[str]
    params: list[dict]
    prompt_set: str = ""
    meta: dict = field(default_factory=dict)


def sample_answers(
    prompts: list[list[dict]],
    settings: SamplingSettings,
    k: int,
    gen_a,
    gen_b=None,
    prompt_set: str = "",
    discarded: Discarded | None = None,
) -> list[SampledAnswers | None]:
    """K answers per prompt (None: every attempt gave an empty answer or two near-identical ones), each model's
    rows of every prompt in one bulk call; seeded as `sampler.sample_pairs` is."""
    sides = ["A" if i % 2 == 0 else "B" for i in range(k)]
    gens = {"A": gen_a, "B": gen_b or gen_a}
    temperature = {"A": settings.temperature_a, "B": settings.temperature_b}
    results: list[SampledAnswers | None] = [None] * len(prompts)
    pending = list(range(len(prompts)))
    for attempt in range(settings.max_attempts):
        if not pending:
            break
        seed = None if settings.seed is None else settings.seed + attempt * 1_000_003
        rows = {i: [""] * k for i in pending}
        for gen in dict.fromkeys(gens.values()):  # one bulk call per model, all its rows of all prompts
            mine = [(i, j) for i in pending for j in range(k) if gens[sides[j]] is gen]
            texts = _complete_many(
                gen,
                [with_system(prompts[i], settings.system(sides[j])) for i, j in mine],
                [temperature[sides[j]] for _, j in mine],
                settings,
                seed,
            )
            for (i, j), text in zip(mine, texts):
                rows[i][j] = text
        still = []
        for i in pending:
            texts = rows[i]
            closest = max(similarity(a, b) for a, b in combinations(texts, 2))
            if all(texts) and closest <= settings.similarity_threshold:
                results[i] = SampledAnswers(
                    prompts[i],
                    texts,
                    [gens[s].name for s in sides],
                    [dict(settings.params(s, gens[s], seed)) for s in sides],
                    prompt_set,
                )
                continue
            still.append(i)
            if discarded is not None and not all(texts):
                discarded.empty += 1
            elif discarded is not None:
                discarded.similar += 1
                discarded.highest = max(discarded.highest, closest)
        pending = still
    return results


@dataclass(frozen=True)
class RankConfig(FeedConfig):
    answers: int = 4  # K answers per prompt


class RankFeed(Feed):
    """A prefetch feed of K answers per prompt (`RankConfig.answers`)."""

    def _sample(self, items, settings, gen_a, gen_b) -> list:
        with remote_budget.charged_to(self._payer):
            return sample_answers(
                [item.messages for item in items],
                settings,
                self.config.answers,
                gen_a,
                gen_b,
                prompt_set=self.config.prompt_set,
                discarded=self.discarded,
            )


class RankFeeds(FeedManager):
    feed_type = RankFeed
