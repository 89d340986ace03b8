"""Sampling response pairs: two answers per prompt from one batched decode, near-duplicates dropped.

Owns the per-row temperature trick that lets two sampling settings share one batch, the `Generator` (a loaded
model that completes chats), bulk sampling across prompts, and the similarity filter (a pair whose answers are
near-identical is resampled and never shown); the settings themselves are in settings.py. It knows models
only through a loaded (model, tokenizer) pair and nothing about the store or the UI.

Two decoders give the same outputs: `decoding.decode` (the default: a lean loop over the model's forward with
a KV cache, see that module) and `generate` (transformers' own, used when a model's generation config asks
for logits processing that `decode` does not do, or when asked for). Both sample the same distribution; a
seeded `complete` draws exactly as `generate` does, so it gives the same tokens with either. Bulk sampling
(`complete_many`, `sample_pairs`) batches many prompts per decode and lets finished rows leave early.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

import torch
from rapidfuzz import fuzz
from transformers import LogitsProcessor, LogitsProcessorList

from .decoding import decode, eos_ids, lean_decoding_supported
from .settings import SamplingSettings


class RowTemperature(LogitsProcessor):
    """Divide each batch row's logits by its own temperature.

    `generate` takes one temperature per call; this processor lets the A and B settings run in a single
    batched call. transformers applies custom processors before its own top-p warper, so top-p sees the
    tempered distribution, exactly as with two separate calls.
    """

    def __init__(self, temperatures: torch.Tensor):
        self.temperatures = temperatures

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores / self.temperatures.to(scores.device, scores.dtype).unsqueeze(1)


def with_system(messages: list[dict], system: str) -> list[dict]:
    """The prompt as one side sees it: its system prompt first, in place of the prompt's own if it has one."""
    if not system:
        return messages
    rest = messages[1:] if messages and messages[0].get("role") == "system" else messages
    return [{"role": "system", "content": system}, *rest]


def similarity(a: str, b: str) -> float:
    """Normalized edit similarity in [0, 1] (rapidfuzz: compiled, ~100x difflib)."""
    return fuzz.ratio(a, b) / 100.0


@dataclass
class SampledPair:
    messages: list[dict]
    text_a: str
    text_b: str
    model_a: str
    model_b: str
    params_a: dict
    params_b: dict
    similarity: float
    attempts: int
    prompt_set: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """How the pair is stored: 'synthetic' when its sides answered under system prompts of their own."""
        return "synthetic" if "system_prompt" in self.params_a or "system_prompt" in self.params_b else "sampler"


BULK_ROWS = 64  # rows per decoding batch in bulk sampling: 64 beat 32 and 16 here (bench/bench_bulk.py)


class Generator:
    """A loaded model and tokenizer that produce chat completions; one call at a time (a lock), since
    two threads decoding on 2 cores only slow each other down.

    `lean=None` (default) decodes with `decode` whenever the model allows it (see `lean_decoding_supported`),
    otherwise with `generate`; `lean=False` always uses `generate`. `share` (core.cpu_share.CpuShare, given by
    the pool) is the workspace's plan for the cores beside a training worker.
    """

    def __init__(self, name: str, model, tokenizer, lean: bool | None = None, share=None):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.share = share
        self.lock = threading.Lock()
        tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        self.lean = lean_decoding_supported(model) if lean is None else lean
        self.eos_token_ids = eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (self.eos_token_ids[0] if self.eos_token_ids else 0)

    @contextlib.contextmanager
    def decoding(self):
        """Hold the model for one decode: its lock, inference mode, and the cores' plan (one thread while a
        worker of the workspace trains, core.cpu_share) for every caller alike: the feeds, the arena,
        evaluation."""
        with self.lock, torch.inference_mode(), self.share.sampling() if self.share else contextlib.nullcontext():
            yield

    def complete(
        self,
        conversations: list[list[dict]],
        temperatures: list[float],
        *,
        top_p: float,
        max_new_tokens: int,
        seed: int | None,
        min_new_tokens: int = 0,
    ) -> list[str]:
        """One sampled completion per conversation, all rows decoded together in one batch.

        `min_new_tokens` holds back the end token until that many tokens are out (benchmarks use it to
        time a fixed length). A seed makes the call reproducible (same seed, model and decoder: same texts).
        """
        texts = [self._prompt(c) for c in conversations]
        with self.decoding():
            if seed is not None:
                torch.manual_seed(seed)  # both decoders draw from the global generator, in the same order
            return self._decode(
                texts, temperatures, top_p, max_new_tokens, min_new_tokens, same_draws_as_generate=seed is not None
            )

    def complete_many(
        self,
        conversations: list[list[dict]],
        temperatures: list[float],
        *,
        top_p: float,
        max_new_tokens: int,
        seed: int | None,
        min_new_tokens: int = 0,
        batch_rows: int | None = None,
    ) -> list[str]:
        """`complete` for many rows at once (bulk sampling): rows sorted by prompt length, decoded
        `batch_rows` at a time, finished rows leaving each batch early; texts come back in the given order.

        On 2 cores a decoding step of 2 rows is mostly reading the weights; one of 32 rows reads them once
        for 16 prompts (bench/bench_bulk.py measures it). A seed makes the whole call reproducible
        (same rows, seed and batch size: same texts); it does not reproduce `complete` row by row.
        """
        if len(conversations) != len(temperatures):
            raise ValueError("one temperature per conversation")
        size = max(1, batch_rows or BULK_ROWS)
        texts = [self._prompt(c) for c in conversations]
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))  # similar lengths share a batch
        results: list[str] = [""] * len(texts)
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            rng = None if seed is None else torch.Generator().manual_seed(seed + start)
            with self.decoding():  # released between batches: a labeler's request can go in
                outs = self._decode(
                    [texts[i] for i in chunk],
                    [temperatures[i] for i in chunk],
                    top_p,
                    max_new_tokens,
                    min_new_tokens,
                    rng=rng,
                    prune=True,
                )
            for i, text in zip(chunk, outs):
                results[i] = text
        return results

    def _prompt(self, conversation: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)

    def _decode(
        self,
        texts: list[str],
        temperatures: list[float],
        top_p: float,
        max_new_tokens: int,
        min_new_tokens: int,
        *,
        rng: torch.Generator | None = None,
        same_draws_as_generate: bool = False,
        prune: bool = False,
    ) -> list[str]:
        """Decode one left-padded batch (the caller holds the lock and inference mode)."""
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        row_temperatures = torch.tensor(temperatures, dtype=torch.float32)
        if self.lean:
            new_tokens = decode(
                self.model,
                batch["input_ids"],
                batch["attention_mask"],
                row_temperatures,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                min_new_tokens=min_new_tokens,
                eos_token_ids=self.eos_token_ids,
                pad_token_id=self.pad_token_id,
                rng=rng,
                same_draws_as_generate=same_draws_as_generate,
                prune=prune,
            )
        else:
            if rng is not None:  # `generate` draws from the global generator only
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=rng)))
            extra = {"min_new_tokens": min_new_tokens} if min_new_tokens else {}
            output = self.model.generate(
                **batch,
                do_sample=True,
                temperature=1.0,
                top_p=top_p,
                top_k=0,
                max_new_tokens=max_new_tokens,
                logits_processor=LogitsProcessorList([RowTemperature(row_temperatures)]),
                pad_token_id=self.pad_token_id,
                **extra,
            )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


@dataclass
class SampledResponse:
    messages: list[dict]
    text: str
    model: str
    params: dict
    prompt_set: str = ""
    meta: dict = field(default_factory=dict)


def sample_singles(
    prompts: list[list[dict]],
    settings: SamplingSettings,
    gen: Generator,
    prompt_set: str = "",
    discarded: "Discarded | None" = None,
) -> list[SampledResponse | None]:
    """One response per prompt (for thumbs up/down) at setting A's temperature, batched across prompts
    (`complete_many`); None for a prompt whose every attempt was empty (counted in `discarded`)."""
    results: list[SampledResponse | None] = [None] * len(prompts)
    pending = list(range(len(prompts)))
    for attempt in range(settings.max_attempts):
        if not pending:
            break
        seed = None if settings.seed is None else settings.seed + attempt * 1_000_003
        texts = gen.complete_many(
            [with_system(prompts[i], settings.system("A")) for i in pending],
            [settings.temperature_a] * len(pending),
            top_p=settings.top_p,
            max_new_tokens=settings.max_new_tokens,
            seed=seed,
        )
        for i, text in zip(pending, texts):
            if text:
                results[i] = SampledResponse(prompts[i], text, gen.name, settings.params("A", gen, seed), prompt_set)
            elif discarded is not None:
                discarded.empty += 1
        pending = [i for i in pending if results[i] is None]
    return results


def sample_pair(
    messages: list[dict],
    settings: SamplingSettings,
    gen_a: Generator,
    gen_b: Generator | None = None,
    prompt_set: str = "",
) -> SampledPair | None:
    """Two responses for one prompt (`sample_pairs` of one); None when every attempt gave near-identical or
    empty answers. With one model both answers come from one batched call at the two temperatures; with two
    models each model answers once (at its side's temperature). Each side sees its own system prompt, if set."""
    return sample_pairs([messages], settings, gen_a, gen_b, prompt_set)[0]


def _complete_many(gen, conversations, temperatures, settings: SamplingSettings, seed: int | None) -> list[str]:
    """Bulk completions from a local generator (batched decodes) or a remote one (its request pool)."""
    return gen.complete_many(
        conversations, temperatures, top_p=settings.top_p, max_new_tokens=settings.max_new_tokens, seed=seed
    )


@dataclass
class Discarded:
    """Attempts `sample_pairs` threw away, by reason (the prefetch loop's bound and its message use them)."""

    similar: int = 0  # both answers there, but more similar than the threshold
    empty: int = 0  # one side (or both) came back empty
    highest: float = 0.0  # the highest similarity among the similar ones

    @property
    def total(self) -> int:
        return self.similar + self.empty


def sample_pairs(
    prompts: list[list[dict]],
    settings: SamplingSettings,
    gen_a: Generator,
    gen_b: Generator | None = None,
    prompt_set: str = "",
    discarded: Discarded | None = None,
) -> list[SampledPair | None]:
    """`sample_pair` for many prompts at once, batched across prompts (`Generator.complete_many`); one
    result per prompt, in order (None: every attempt was near-identical or empty).

    Each attempt samples every prompt still without a usable pair in one bulk call per model; a seed
    (`settings.seed`, then + attempt x 1,000,003, recorded with each pair) makes the whole call reproducible.
    `discarded`, when given, counts the attempts thrown away and why.
    """
    results: list[SampledPair | None] = [None] * len(prompts)
    pending = list(range(len(prompts)))
    one_model = gen_b is None or gen_b is gen_a
    model_b = gen_a.name if one_model else gen_b.name
    for attempt in range(settings.max_attempts):
        if not pending:
            break
        seed = None if settings.seed is None else settings.seed + attempt * 1_000_003
        side_a = [with_system(prompts[i], settings.system("A")) for i in pending]
        side_b = [with_system(prompts[i], settings.system("B")) for i in pending]
        if one_model:  # A and B rows of a prompt in one decode, at their own temperatures
            rows = [row for pair in zip(side_a, side_b) for row in pair]
            temps = [settings.temperature_a, settings.temperature_b] * len(pending)
            texts = _complete_many(gen_a, rows, temps, settings, seed)
            texts_a, texts_b = texts[0::2], texts[1::2]
        else:
            texts_a = _complete_many(gen_a, side_a, [settings.temperature_a] * len(pending), settings, seed)
            texts_b = _complete_many(gen_b, side_b, [settings.temperature_b] * len(pending), settings, seed)
        params_a, params_b = settings.params("A", gen_a, seed), settings.params("B", gen_b or gen_a, seed)
        still = []
        for i, text_a, text_b in zip(pending, texts_a, texts_b):
            sim = similarity(text_a, text_b)
            results[i] = SampledPair(
                prompts[i],
                text_a,
                text_b,
                gen_a.name,
                model_b,
                dict(params_a),
                dict(params_b),
                sim,
                attempt + 1,
                prompt_set,
            )
            if not (text_a and text_b and sim <= settings.similarity_threshold):
                still.append(i)
                if discarded is not None and not (text_a and text_b):
                    discarded.empty += 1
                elif discarded is not None:
                    discarded.similar += 1
                    discarded.highest = max(discarded.highest, sim)
        pending = still
    for i in pending:
        results[i] = None
    return results
