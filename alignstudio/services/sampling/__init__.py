"""Sampling response pairs: two answers per prompt from one batched decode, near-duplicates dropped.

Owns the decoding settings, the per-row temperature trick that lets two sampling settings share one batch,
the decoding loop, and the similarity filter (a pair whose answers are near-identical is resampled and never
shown). It knows models only through a loaded (model, tokenizer) pair and nothing about the store or the UI.

Two decoders give the same outputs: `decode` (the default: a lean loop over the model's forward with a KV
cache that finds the top-p nucleus with a partial top-k instead of `generate`'s full-vocabulary sort, and
skips `generate`'s per-step bookkeeping) and `generate` (transformers' own, used when a model's generation
config asks for logits processing that `decode` does not do, or when asked for). Both sample the same
distribution; a seeded call draws exactly as `generate` does, so it gives the same tokens with either.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import asdict, dataclass, field

import torch
from rapidfuzz import fuzz
from transformers import (
    DynamicCache,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
)

from ...core.errors import UserError
from ...core.settings import check_bounds, setting


@dataclass(frozen=True)
class SamplingSettings:
    """Two sampling settings (A and B) for a pair; the seed article samples at 0.7 and 1.0. Each field holds
    its default, bounds and help; the CLI flags and the app's controls are built from them."""

    temperature_a: float = setting(0.7, label="Temperature A", help="temperature of response A",
                                   minimum=0.05, maximum=2.0, step=0.05)
    temperature_b: float = setting(1.0, label="Temperature B", help="temperature of response B",
                                   minimum=0.05, maximum=2.0, step=0.05)
    top_p: float = setting(0.95, label="top_p", help="nucleus sampling: the smallest set of tokens with this mass",
                           maximum=1.0, step=0.01)
    max_new_tokens: int = setting(128, label="Max new tokens", help="tokens generated per response at most",
                                  minimum=1, maximum=2048)
    seed: int | None = setting(None, label="Seed", help="make the run reproducible (empty = random)")
    similarity_threshold: float = setting(0.9, label="Similarity threshold", maximum=1.0,
                                          help="resample a pair whose responses are more similar than this (0-1)")
    max_attempts: int = setting(3, help="resampling tries before the prompt is skipped", minimum=1)
    # synthetic pairs: each side answers under its own system prompt ("" = the prompt as it is)
    system_a: str = setting("", label="System prompt A (synthetic pairs; empty = none)",
                            help="system prompt of response A")
    system_b: str = setting("", label="System prompt B", help="system prompt of response B")

    def __post_init__(self):
        check_bounds(self, "temperature_a", "temperature_b", "max_new_tokens")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 < self.similarity_threshold <= 1.0:
            raise UserError(f"similarity_threshold must be in (0, 1], got {self.similarity_threshold}")
        if self.max_attempts < 1:
            raise UserError("max_attempts must be at least 1")
        for name in ("system_a", "system_b"):
            if len(getattr(self, name)) > 20_000:
                raise UserError(f"{name} is longer than 20,000 characters")
        if self.system_a.strip() and self.system_a.strip() == self.system_b.strip():
            raise UserError("the two system prompts are the same; a synthetic pair needs two different ones")

    def params(self, side: str) -> dict:
        """What is recorded with each generation (its own temperature and system prompt, the shared rest)."""
        temperature = self.temperature_a if side == "A" else self.temperature_b
        params = {"temperature": temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                  "seed": self.seed}
        system = self.system(side)
        return params | ({"system_prompt": system} if system else {})

    def system(self, side: str) -> str:
        return (self.system_a if side == "A" else self.system_b).strip()

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


# -- the lean decoder ------------------------------------------------------------------------------------------

NUCLEUS_SEARCH = 1024  # candidates looked at before falling back to a full sort (the nucleus fits ~96% of steps)

# generation-config fields whose non-default values make `generate` process logits beyond temperature and top-p;
# a model that sets any of them is sampled with `generate` so its outputs keep their documented meaning
_EXTRA_PROCESSING = ("repetition_penalty", "encoder_repetition_penalty", "no_repeat_ngram_size", "bad_words_ids",
                     "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "suppress_tokens", "begin_suppress_tokens",
                     "forced_bos_token_id", "forced_eos_token_id", "sequence_bias", "min_length", "min_new_tokens",
                     "exponential_decay_length_penalty", "renormalize_logits", "watermarking_config",
                     "guidance_scale", "force_words_ids", "constraints")


def nucleus(logits: torch.Tensor, top_p: float, search: int = NUCLEUS_SEARCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-p candidates of each row and their unnormalized probabilities: (ids, weights), both [rows, k].

    Keeps exactly the tokens transformers' `TopPLogitsWarper` keeps (the most probable ones until their mass
    reaches `top_p`, at least one), with the same relative probabilities; it finds them with a partial
    `topk` over `search` candidates and sorts the whole vocabulary only when a row's nucleus is wider.
    """
    if top_p >= 1.0:
        ids = torch.arange(logits.shape[-1], device=logits.device).expand_as(logits)
        return ids, torch.softmax(logits, dim=-1)
    log_total = torch.logsumexp(logits, dim=-1, keepdim=True)
    width = min(search, logits.shape[-1])
    values, ids = logits.topk(width, dim=-1)          # sorted, most probable first
    probs = (values - log_total).exp()
    mass = probs.cumsum(dim=-1)
    if width < logits.shape[-1] and not bool((mass[:, -1] >= top_p).all()):
        values, ids = logits.sort(dim=-1, descending=True)
        probs = (values - log_total).exp()
        mass = probs.cumsum(dim=-1)
    keep = (mass - probs) < top_p                     # the mass before a token is under top_p: it is in
    keep[:, 0] = True
    return ids, probs.masked_fill(~keep, 0.0)


def sample_nucleus(logits: torch.Tensor, top_p: float, rng: torch.Generator | None = None,
                   same_draws_as_generate: bool = False) -> torch.Tensor:
    """One token per row from the top-p nucleus of `logits` (already tempered).

    By default the draw runs over the nucleus candidates only. With `same_draws_as_generate` it is
    `torch.multinomial` over the whole vocabulary in vocabulary order, as `generate` does it: with the same
    seed and logits it picks the same token (multinomial's exponential race does not depend on how the
    weights are normalized), at the cost of one random number per vocabulary entry. Both are the same
    distribution; seeded calls use the second so that a seed means the same thing with either decoder.
    """
    ids, weights = nucleus(logits, top_p)
    if not same_draws_as_generate:
        return ids.gather(1, torch.multinomial(weights, 1, generator=rng)).squeeze(1)
    dense = weights if top_p >= 1.0 else torch.zeros_like(logits).scatter_(1, ids, weights)
    return torch.multinomial(dense, 1, generator=rng).squeeze(1)


def lean_decoding_supported(model) -> bool:
    """Whether `decode` reproduces `generate` for this model: a decoder-only model whose forward takes a
    cache, positions and `logits_to_keep`, and whose generation config asks for no extra logits processing."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    if not {"input_ids", "attention_mask", "position_ids", "past_key_values", "logits_to_keep"} <= set(params):
        return False
    generation = getattr(model, "generation_config", None)
    if generation is None:
        return True
    defaults = GenerationConfig()
    return all(getattr(generation, name, None) == getattr(defaults, name, None) for name in _EXTRA_PROCESSING)


def eos_ids(model, tokenizer) -> list[int]:
    """The ids that end a response: the generation config's (one or several), else the tokenizer's."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = getattr(model.config, "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return []
    return [int(i) for i in ids] if isinstance(ids, (list, tuple)) else [int(ids)]


@torch.inference_mode()
def decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, temperatures: torch.Tensor, *,
           top_p: float, max_new_tokens: int, eos_token_ids: list[int], pad_token_id: int,
           min_new_tokens: int = 0, rng: torch.Generator | None = None,
           same_draws_as_generate: bool = False) -> torch.Tensor:
    """Sample up to `max_new_tokens` per row of a left-padded batch; returns the new tokens [rows, n]
    (rows that ended early are padded with `pad_token_id` after their end token, as `generate` does).

    Per step: logits (float32) / the row's temperature, the end tokens masked while fewer than
    `min_new_tokens` are out, then one draw from the top-p nucleus.
    """
    rows = input_ids.shape[0]
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    cache = DynamicCache(config=model.config)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                past_key_values=cache, use_cache=True, logits_to_keep=1)
    stops = torch.tensor(eos_token_ids, dtype=torch.long)
    row_t = temperatures.to(torch.float32).unsqueeze(1)
    finished = torch.zeros(rows, dtype=torch.bool)
    position = positions[:, -1:]
    mask = attention_mask
    produced: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        logits = out.logits[:, -1, :].float() / row_t
        if step < min_new_tokens and stops.numel():
            logits[:, stops] = float("-inf")
        token = sample_nucleus(logits, top_p, rng, same_draws_as_generate)
        token = token.masked_fill(finished, pad_token_id)
        produced.append(token)
        if stops.numel():
            finished |= torch.isin(token, stops)
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        position = position + 1
        mask = torch.cat([mask, mask.new_ones(rows, 1)], dim=1)
        out = model(input_ids=token.unsqueeze(1), attention_mask=mask, position_ids=position,
                    past_key_values=cache, use_cache=True)
    return torch.stack(produced, dim=1)


class Generator:
    """A loaded model and tokenizer that produce chat completions; one call at a time (a lock), since
    two threads decoding on 2 cores only slow each other down.

    `lean=None` (default) decodes with `decode` whenever the model allows it (see `lean_decoding_supported`),
    otherwise with `generate`; `lean=False` always uses `generate`.
    """

    def __init__(self, name: str, model, tokenizer, lean: bool | None = None):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.lock = threading.Lock()
        tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        self.lean = lean_decoding_supported(model) if lean is None else lean
        self.eos_token_ids = eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else (self.eos_token_ids[0] if self.eos_token_ids else 0)

    def complete(self, conversations: list[list[dict]], temperatures: list[float], *, top_p: float,
                 max_new_tokens: int, seed: int | None, min_new_tokens: int = 0) -> list[str]:
        """One sampled completion per conversation, all rows decoded together in one batch.

        `min_new_tokens` holds back the end token until that many tokens are out (benchmarks use it to
        time a fixed length). A seed makes the call reproducible (same seed, model and decoder: same texts).
        """
        texts = [
            self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations
        ]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        row_temperatures = torch.tensor(temperatures, dtype=torch.float32)
        with self.lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)  # both decoders draw from the global generator, in the same order
            if self.lean:
                new_tokens = decode(self.model, batch["input_ids"], batch["attention_mask"], row_temperatures,
                                    top_p=top_p, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                                    eos_token_ids=self.eos_token_ids, pad_token_id=self.pad_token_id,
                                    same_draws_as_generate=seed is not None)
            else:
                extra = {"min_new_tokens": min_new_tokens} if min_new_tokens else {}
                output = self.model.generate(
                    **batch, do_sample=True, temperature=1.0, top_p=top_p, top_k=0, max_new_tokens=max_new_tokens,
                    logits_processor=LogitsProcessorList([RowTemperature(row_temperatures)]),
                    pad_token_id=self.pad_token_id, **extra,
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
        (text,) = gen.complete([with_system(messages, settings.system("A"))], [settings.temperature_a],
                               top_p=settings.top_p, max_new_tokens=settings.max_new_tokens, seed=seed)
        if text:
            params = settings.params("A") | {"seed": seed}
            return SampledResponse(messages, text, gen.name, params, prompt_set)
    return None


def sample_pair(messages: list[dict], settings: SamplingSettings, gen_a: Generator,
                gen_b: Generator | None = None, prompt_set: str = "") -> SampledPair | None:
    """Two responses for one prompt; None when every attempt gave near-identical or empty answers.

    With one model both answers come from one batched call at the two temperatures; with two models
    each model answers once (at its side's temperature). Each side sees its own system prompt, if set.
    """
    best: SampledPair | None = None
    prompt_a, prompt_b = with_system(messages, settings.system("A")), with_system(messages, settings.system("B"))
    for attempt in range(settings.max_attempts):
        seed = None if settings.seed is None else settings.seed + attempt * 1_000_003
        if gen_b is None or gen_b is gen_a:
            text_a, text_b = gen_a.complete(
                [prompt_a, prompt_b], [settings.temperature_a, settings.temperature_b],
                top_p=settings.top_p, max_new_tokens=settings.max_new_tokens, seed=seed)
            model_b = gen_a.name
        else:
            (text_a,) = gen_a.complete([prompt_a], [settings.temperature_a], top_p=settings.top_p,
                                       max_new_tokens=settings.max_new_tokens, seed=seed)
            (text_b,) = gen_b.complete([prompt_b], [settings.temperature_b], top_p=settings.top_p,
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
