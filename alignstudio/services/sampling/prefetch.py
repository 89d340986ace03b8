"""Background queues of ready samples, so the next pair (or response) is on screen the moment a label is given.

One worker thread per configuration keeps samples waiting: pairs for the Label tab, single responses for the
Feedback tab. It starts by keeping `depth` ready and follows the labeling pace: each time someone asks while
none is ready, it aims for one more, up to three times `depth`; whatever is missing is sampled in one batched
decode (`sampler.sample_pairs` / `sample_singles`, up to BATCH prompts). Annotators share a queue:
`Queue.get` hands each sample to exactly one of them. A new configuration gets a new queue; the least recently
used ones are stopped, and their samples never shown.

Every loop is bounded, since a remote model costs a request per answer: after FAILED_BATCHES batches in a row
that produced nothing (every attempt near-identical or empty; a pause of BACKOFF_S, doubling, after each) the feed
stops and `get` raises one UserError that says what happened and how often. It samples only while someone may
want what it makes: not after IDLE_S without a `get`, unless someone is waiting. Its remote requests count
against the budget of whoever last asked it for a sample (services/remote_budget.py).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from ...core import access
from ...core.errors import UserError
from ...core.formats import PromptItem
from .. import remote_budget
from .generators import GeneratorPool
from .sampler import Discarded, SampledPair, SampledResponse, sample_pairs, sample_singles
from .settings import SamplingSettings

log = logging.getLogger(__name__)
MODES = ("pair", "single")
BATCH = 4  # most samples one decode prepares at once
FAILED_BATCHES = 2  # batches in a row without a usable sample before the feed gives up
BACKOFF_S = 1.0  # pause after a batch that produced nothing (doubles each time)
IDLE_S = 120.0  # no get() for this long and nobody waiting: pause sampling until the next get()


class NothingReady(UserError):
    """Nothing to show yet (no sample ready in time, an empty queue): a state to wait in, not a failure, so the
    tabs show a placeholder and try again rather than an error."""


@dataclass(frozen=True)
class FeedConfig:
    prompt_set: str
    model_a: str
    model_b: str | None
    settings: SamplingSettings
    mode: str = "pair"  # "pair": two responses (Label tab); "single": one response (Feedback tab)


class Feed:
    """Producer thread + bounded queue for one configuration."""

    def __init__(self, pool: GeneratorPool, prompts: list[PromptItem], config: FeedConfig, depth: int = 3):
        if not prompts:
            raise UserError(f"prompt set {config.prompt_set!r} has no prompts")
        if config.mode not in MODES:
            raise UserError(f"unknown feed mode {config.mode!r}")
        self.pool = pool
        self.prompts = list(prompts)
        self.config = config
        self.queue: queue.Queue[SampledPair | SampledResponse] = queue.Queue()
        self.target = depth  # samples to keep ready; grows when annotators outpace sampling
        self.most = max(3 * depth, 1)
        self.error: str | None = None
        self.skipped = 0  # prompts dropped because every attempt was near-identical or empty
        self.discarded = Discarded()  # attempts thrown away since the last usable sample
        self.waiting = 0  # get() calls waiting now
        self.last_get = time.monotonic()  # made for a caller who will ask for it at once
        self._payer = remote_budget.user()  # whose request budget the remote calls use (the latest caller)
        self._wake = threading.Event()
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._rng = random.Random(config.settings.seed)
        self._thread = threading.Thread(target=self._run, name=f"prefetch-{config.mode}", daemon=True)
        self._thread.start()

    def _order(self):
        while True:
            order = list(range(len(self.prompts)))
            self._rng.shuffle(order)
            yield from order

    def _sample(self, items: list[PromptItem], settings: SamplingSettings, gen_a, gen_b) -> list:
        with remote_budget.charged_to(self._payer):
            if self.config.mode == "single":
                return sample_singles(
                    [item.messages for item in items],
                    settings,
                    gen_a,
                    prompt_set=self.config.prompt_set,
                    discarded=self.discarded,
                )
            return sample_pairs(
                [item.messages for item in items],
                settings,
                gen_a,
                gen_b,
                prompt_set=self.config.prompt_set,
                discarded=self.discarded,
            )

    def _wanted(self) -> bool:
        """Sample now? Only below the target, and only while someone waits or asked recently."""
        if self.queue.qsize() >= self.target:
            return False
        return self.waiting > 0 or time.monotonic() - self.last_get < IDLE_S

    def _gave_up(self) -> str:
        """The one message for a feed whose attempts all came back unusable."""
        d, settings = self.discarded, self.config.settings
        two = self.config.model_b and self.config.model_b != self.config.model_a
        who = "the two models" if two else "the model"
        parts = []
        if d.similar:
            parts.append(
                f"near-identical answers {d.similar} times (similarity up to {d.highest:.2f}, above "
                f"the threshold {settings.similarity_threshold:g})"
            )
        if d.empty:
            parts.append(f"an empty answer {d.empty} times")
        return (
            f"{who} gave {' and '.join(parts) or 'no usable answer'} in {d.total} attempts; sampling stopped. "
            "Try other temperatures or models."
        )

    def _run(self) -> None:
        try:
            with access.acting_as(access.SERVER):  # the caller was checked by FeedManager.feed
                gen_a = self.pool.get(self.config.model_a)
                gen_b = self.pool.get(self.config.model_b) if self.config.model_b else None
            with self._count_lock:  # loading a model is not idleness: the clock starts when sampling can
                self.last_get = max(self.last_get, time.monotonic())
            base = self.config.settings
            order, count, failed = self._order(), 0, 0
            while True:
                while not self._wanted() and not self._stop.is_set():
                    self._wake.wait(0.1)  # enough is ready, or nobody asks: sample when someone does
                    self._wake.clear()
                if self._stop.is_set():
                    return
                # all that is missing in one batched decode (a batch of 4 pairs costs about 1.3 pairs' time)
                wanted = max(1, min(self.target - self.queue.qsize(), BATCH))
                items = [self.prompts[next(order)] for _ in range(wanted)]
                # a distinct but reproducible seed per batch when the user fixed one
                settings = base if base.seed is None else replace(base, seed=base.seed + count * 7919)
                count += wanted
                samples = self._sample(items, settings, gen_a, gen_b)  # one core while a worker trains
                for item, sample in zip(items, samples):
                    if sample is None:
                        self.skipped += 1
                        continue
                    sample.meta = {"prompt_id": item.id, "category": item.category}
                    self.queue.put(sample)
                if any(sample is not None for sample in samples):
                    failed, self.discarded = 0, Discarded()
                    continue
                failed += 1
                if failed >= FAILED_BATCHES:  # a bound on what an unlucky configuration can cost
                    self.error = self._gave_up()
                    log.warning("prefetch stopped: %s", self.error)
                    return
                self._stop.wait(BACKOFF_S * 2 ** (failed - 1))
        except UserError as exc:  # already one clear line (a remote server's error, a spent budget)
            self.error = str(exc)
        except Exception as exc:  # surfaced to the UI by get(); the app keeps serving
            log.exception("prefetch failed")
            self.error = f"sampling failed: {type(exc).__name__}: {exc}"

    def get(self, timeout: float = 300.0):
        if self.queue.empty() and self.target < self.most:
            self.target += 1  # someone waits: labeling outpaces sampling, so keep more ready from now on
        caller = access.current()
        if caller is not None:
            self._payer = caller.name
        with self._count_lock:
            self.waiting += 1
            self.last_get = time.monotonic()
        self._wake.set()
        try:
            waited = 0.0
            while True:
                try:
                    return self.queue.get_nowait() if self.error else self.queue.get(timeout=0.25)
                except queue.Empty:
                    if self.error:
                        raise UserError(self.error) from None
                    waited += 0.25
                    if waited >= timeout:
                        raise NothingReady(
                            "no sample was ready in time; the model may be too slow for these settings"
                        ) from None
        finally:
            with self._count_lock:
                self.waiting -= 1
                self.last_get = time.monotonic()

    def ready(self) -> int:
        return self.queue.qsize()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class FeedManager:
    """Feeds by configuration; at most `keep` run at once (least recently used ones are stopped)."""

    feed_type = Feed  # what a feed samples (answers.RankFeeds: K answers per prompt)

    def __init__(self, pool: GeneratorPool, prompt_sets, depth: int = 3, keep: int = 3):
        self.pool = pool
        self.prompt_sets = prompt_sets
        self.depth = depth
        self.keep = keep
        self._feeds: OrderedDict[FeedConfig, Feed] = OrderedDict()
        self._lock = threading.Lock()

    def feed(self, config: FeedConfig, restart: bool = True) -> Feed:
        """The feed of `config`; one that gave up is started again, unless `restart` is False (a tab asking
        again by itself): then its error is raised, so no timer keeps a failing remote model busy."""
        for name in filter(None, (config.model_a, config.model_b)):
            self.pool.check(name)  # here, as the caller: a typed path is checked (core.access)
        with self._lock:
            feed = self._feeds.get(config)
            if feed is not None and feed.error and not restart:
                raise UserError(feed.error)
            if feed is None or feed.error:
                if feed is not None:
                    feed.stop()
                feed = self.feed_type(self.pool, self.prompt_sets.load(config.prompt_set), config, self.depth)
                self._feeds[config] = feed
            self._feeds.move_to_end(config)
            while len(self._feeds) > self.keep:
                _, oldest = self._feeds.popitem(last=False)
                oldest.stop()
            return feed

    def stop(self) -> None:
        with self._lock:
            feeds = list(self._feeds.values())
            self._feeds.clear()
        for feed in feeds:
            feed.stop()
        for feed in feeds:  # let a sample in progress finish: a thread killed inside torch aborts the process
            feed.join(timeout=30)
