"""The lean decoding loop: sampling from a decoder-only model's forward with a KV cache, without `generate`.

Owns the top-p nucleus (a partial top-k instead of `generate`'s full-vocabulary sort), the per-step draw (the
same draws as `generate` when seeded), the check that a model can be decoded this way, and the loop itself,
where finished rows can leave the batch early. It knows nothing of prompts, chat templates or settings.
"""

from __future__ import annotations

import inspect

import torch
from transformers import DynamicCache, GenerationConfig

NUCLEUS_SEARCH = 1024  # candidates looked at before falling back to a full sort (the nucleus fits ~96% of steps)

# generation-config fields whose non-default values make `generate` process logits beyond temperature and top-p;
# a model that sets any of them is sampled with `generate` so its outputs keep their documented meaning
_EXTRA_PROCESSING = (
    "repetition_penalty",
    "encoder_repetition_penalty",
    "no_repeat_ngram_size",
    "bad_words_ids",
    "min_p",
    "typical_p",
    "epsilon_cutoff",
    "eta_cutoff",
    "suppress_tokens",
    "begin_suppress_tokens",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "sequence_bias",
    "min_length",
    "min_new_tokens",
    "exponential_decay_length_penalty",
    "renormalize_logits",
    "watermarking_config",
    "guidance_scale",
    "force_words_ids",
    "constraints",
)


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
    values, ids = logits.topk(width, dim=-1)  # sorted, most probable first
    probs = (values - log_total).exp()
    mass = probs.cumsum(dim=-1)
    if width < logits.shape[-1] and not bool((mass[:, -1] >= top_p).all()):
        values, ids = logits.sort(dim=-1, descending=True)
        probs = (values - log_total).exp()
        mass = probs.cumsum(dim=-1)
    keep = (mass - probs) < top_p  # the mass before a token is under top_p: it is in
    keep[:, 0] = True
    return ids, probs.masked_fill(~keep, 0.0)


def sample_nucleus(
    logits: torch.Tensor, top_p: float, rng: torch.Generator | None = None, same_draws_as_generate: bool = False
) -> torch.Tensor:
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
def decode(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    temperatures: torch.Tensor,
    *,
    top_p: float,
    max_new_tokens: int,
    eos_token_ids: list[int],
    pad_token_id: int,
    min_new_tokens: int = 0,
    rng: torch.Generator | None = None,
    same_draws_as_generate: bool = False,
    prune: bool = False,
) -> torch.Tensor:
    """Sample up to `max_new_tokens` per row of a left-padded batch; returns the new tokens [rows, n]
    (rows that ended early are padded with `pad_token_id` after their end token, as `generate` does).

    Per step: logits (float32) / the row's temperature, the end tokens masked while fewer than
    `min_new_tokens` are out, then one draw from the top-p nucleus. With `prune`, finished rows leave the
    batch (and its KV cache) once a quarter of it has finished, so a long answer does not keep short ones'
    rows busy; it changes which random numbers later rows draw, so it is off when draws must match `generate`.
    """
    prune = prune and not same_draws_as_generate
    rows = input_ids.shape[0]
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    cache = DynamicCache(config=model.config)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    stops = torch.tensor(eos_token_ids, dtype=torch.long)
    row_t = temperatures.to(torch.float32).unsqueeze(1)
    finished = torch.zeros(rows, dtype=torch.bool)
    position = positions[:, -1:]
    mask = attention_mask
    produced = torch.full((rows, max_new_tokens), pad_token_id, dtype=torch.long)
    alive = torch.arange(rows)  # the batch row each decoded row came from (all of them until rows leave)
    length = 0
    for step in range(max_new_tokens):
        logits = out.logits[:, -1, :].float() / row_t
        if step < min_new_tokens and stops.numel():
            logits[:, stops] = float("-inf")
        token = sample_nucleus(logits, top_p, rng, same_draws_as_generate)
        token = token.masked_fill(finished, pad_token_id)
        produced[alive, step] = token
        length = step + 1
        if stops.numel():
            finished |= torch.isin(token, stops)
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        if prune and 4 * int(finished.sum()) >= finished.numel():  # batched: one cache copy per quarter
            keep = (~finished).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            alive, row_t, position, mask, token = alive[keep], row_t[keep], position[keep], mask[keep], token[keep]
            finished = finished[keep]
            rows = keep.numel()
        position = position + 1
        mask = torch.cat([mask, mask.new_ones(rows, 1)], dim=1)
        out = model(
            input_ids=token.unsqueeze(1),
            attention_mask=mask,
            position_ids=position,
            past_key_values=cache,
            use_cache=True,
        )
    return produced[:, :length]
