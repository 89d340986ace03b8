"""Sampling response pairs: two answers per prompt from one batched `generate` call, near-duplicates dropped.

Owns the decoding settings, the per-row temperature trick that lets two sampling settings share one batch,
and the similarity filter (a pair whose answers are near-identical is resampled and never shown). It knows
models only through a loaded (model, tokenizer) pair and nothing about the store or the UI.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

import torch
from rapidfuzz import fuzz
from transformers import LogitsProcessor, LogitsProcessorList

from ..core.errors import UserError


@dataclass(frozen=True)
class SamplingSettings:
    """Two sampling settings (A and B) for a pair; the seed article samples at 0.7 and 1.0."""

    temperature_a: float = 0.7
    temperature_b: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 128
    seed: int | None = None
    similarity_threshold: float = 0.9   # fuzz.ratio/100 above this = near-identical, resample
    max_attempts: int = 3               # resampling tries before the prompt is skipped

    def __post_init__(self):
        for name in ("temperature_a", "temperature_b"):
            value = getattr(self, name)
            if not 0.05 <= value <= 2.0:
                raise UserError(f"{name} must be between 0.05 and 2.0, got {value}")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 1 <= self.max_new_tokens <= 2048:
            raise UserError(f"max_new_tokens must be between 1 and 2048, got {self.max_new_tokens}")
        if not 0.0 < self.similarity_threshold <= 1.0:
            raise UserError(f"similarity_threshold must be in (0, 1], got {self.similarity_threshold}")
        if self.max_attempts < 1:
            raise UserError("max_attempts must be at least 1")

    def params(self, side: str) -> dict:
        """What is recorded with each generation (its own temperature, the shared rest)."""
        temperature = self.temperature_a if side == "A" else self.temperature_b
        return {"temperature": temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                "seed": self.seed}

    def to_dict(self) -> dict:
        return asdict(self)


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


class Generator:
    """A loaded model and tokenizer that produce chat completions; one call at a time (a lock), since
    two threads decoding on 2 cores only slow each other down."""

    def __init__(self, name: str, model, tokenizer):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.lock = threading.Lock()
        tokenizer.padding_side = "left"  # decoder-only batches pad on the left

    def complete(self, conversations: list[list[dict]], temperatures: list[float], *, top_p: float,
                 max_new_tokens: int, seed: int | None) -> list[str]:
        """One sampled completion per conversation, all in one batched `generate` call."""
        texts = [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations
        ]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        processors = LogitsProcessorList([RowTemperature(torch.tensor(temperatures, dtype=torch.float32))])
        with self.lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            output = self.model.generate(
                **batch, do_sample=True, temperature=1.0, top_p=top_p, top_k=0, max_new_tokens=max_new_tokens,
                logits_processor=processors, pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


@dataclass
class SampledResponse:
    messages: list[dict]
    text: str
    model: str
    params: dict
    prompt_set: str = ""
    meta: dict = field(default_factory=dict)


def sample_single(messages: list[dict], settings: SamplingSettings, gen: Generator,
                  prompt_set: str = "") -> SampledResponse | None:
    """One response (for thumbs up/down) at setting A's temperature; None if every attempt was empty."""
    for attempt in range(settings.max_attempts):
        seed = None if settings.seed is None else settings.seed + attempt * 1_000_003
        (text,) = gen.complete([messages], [settings.temperature_a], top_p=settings.top_p,
                               max_new_tokens=settings.max_new_tokens, seed=seed)
        if text:
            params = settings.params("A") | {"seed": seed}
            return SampledResponse(messages, text, gen.name, params, prompt_set)
    return None


def sample_pair(messages: list[dict], settings: SamplingSettings, gen_a: Generator,
                gen_b: Generator | None = None, prompt_set: str = "") -> SampledPair | None:
    """Two responses for one prompt; None when every attempt gave near-identical or empty answers.

    With one model both answers come from one batched call at the two temperatures; with two models
    each model answers once (at its side's temperature).
    """
    best: SampledPair | None = None
    for attempt in range(settings.max_attempts):
        seed = None if settings.seed is None else settings.seed + attempt * 1_000_003
        if gen_b is None or gen_b is gen_a:
            text_a, text_b = gen_a.complete(
                [messages, messages], [settings.temperature_a, settings.temperature_b],
                top_p=settings.top_p, max_new_tokens=settings.max_new_tokens, seed=seed)
            model_b = gen_a.name
        else:
            (text_a,) = gen_a.complete([messages], [settings.temperature_a], top_p=settings.top_p,
                                       max_new_tokens=settings.max_new_tokens, seed=seed)
            (text_b,) = gen_b.complete([messages], [settings.temperature_b], top_p=settings.top_p,
                                       max_new_tokens=settings.max_new_tokens, seed=seed)
            model_b = gen_b.name
        sim = similarity(text_a, text_b)
        params_a, params_b = settings.params("A"), settings.params("B")
        params_a["seed"] = params_b["seed"] = seed
        best = SampledPair(messages, text_a, text_b, gen_a.name, model_b, params_a, params_b, sim, attempt + 1,
                           prompt_set)
        if text_a and text_b and sim <= settings.similarity_threshold:
            return best
    return None
