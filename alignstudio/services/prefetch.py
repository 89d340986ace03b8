"""A background queue of ready pairs, so the next pair is on screen the moment a label is given.

One worker thread keeps `depth` sampled pairs waiting for the current configuration (prompt set, models,
settings). Annotators share the queue: `Queue.get` hands each pair to exactly one of them. Changing the
configuration starts a fresh queue; pairs sampled for the old one are dropped, never shown.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from dataclasses import dataclass

from ..core.errors import UserError
from ..core.formats import PromptItem
from .generators import GeneratorPool
from .sampling import SampledPair, SamplingSettings, sample_pair

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedConfig:
    prompt_set: str
    model_a: str
    model_b: str | None
    settings: SamplingSettings


class PairFeed:
    """Producer thread + bounded queue for one configuration."""

    def __init__(self, pool: GeneratorPool, prompts: list[PromptItem], config: FeedConfig, depth: int = 3):
        if not prompts:
            raise UserError(f"prompt set {config.prompt_set!r} has no prompts")
        self.pool = pool
        self.prompts = list(prompts)
        self.config = config
        self.queue: queue.Queue[SampledPair] = queue.Queue(maxsize=depth)
        self.error: str | None = None
        self.skipped = 0          # prompts dropped because every attempt was near-identical
        self._stop = threading.Event()
        seed = config.settings.seed
        self._rng = random.Random(seed)
        self._thread = threading.Thread(target=self._run, name="pair-prefetch", daemon=True)
        self._thread.start()

    def _order(self):
        while True:
            order = list(range(len(self.prompts)))
            self._rng.shuffle(order)
            yield from order

    def _run(self) -> None:
        try:
            gen_a = self.pool.get(self.config.model_a)
            gen_b = self.pool.get(self.config.model_b) if self.config.model_b else None
            settings = self.config.settings
            for count, index in enumerate(self._order()):
                if self._stop.is_set():
                    return
                if settings.seed is not None:  # distinct but reproducible seed per sampled pair
                    settings = SamplingSettings(**(self.config.settings.to_dict() | {
                        "seed": self.config.settings.seed + count * 7919}))
                item = self.prompts[index]
                pair = sample_pair(item.messages, settings, gen_a, gen_b, prompt_set=self.config.prompt_set)
                if pair is None:
                    self.skipped += 1
                    continue
                pair.meta = {"prompt_id": item.id, "category": item.category}
                while not self._stop.is_set():
                    try:
                        self.queue.put(pair, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except Exception as exc:  # surfaced to the UI by get(); the app keeps serving
            log.exception("prefetch failed")
            self.error = f"{type(exc).__name__}: {exc}"

    def get(self, timeout: float = 300.0) -> SampledPair:
        waited = 0.0
        while True:
            if self.error:
                raise UserError(f"sampling failed: {self.error}")
            try:
                return self.queue.get(timeout=0.25)
            except queue.Empty:
                waited += 0.25
                if waited >= timeout:
                    raise UserError("no pair was ready in time; the model may be too slow for these settings")

    def ready(self) -> int:
        return self.queue.qsize()

    def stop(self) -> None:
        self._stop.set()


class FeedManager:
    """Holds the current feed; the UI asks for pairs by configuration."""

    def __init__(self, pool: GeneratorPool, prompt_sets, depth: int = 3):
        self.pool = pool
        self.prompt_sets = prompt_sets
        self.depth = depth
        self._feed: PairFeed | None = None
        self._lock = threading.Lock()

    def feed(self, config: FeedConfig) -> PairFeed:
        with self._lock:
            if self._feed is None or self._feed.config != config or self._feed.error:
                if self._feed is not None:
                    self._feed.stop()
                self._feed = PairFeed(self.pool, self.prompt_sets.load(config.prompt_set), config, self.depth)
            return self._feed

    def stop(self) -> None:
        with self._lock:
            if self._feed is not None:
                self._feed.stop()
