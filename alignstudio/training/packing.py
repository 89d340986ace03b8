"""Packed rows for the CPU training forward: no padding, and a DPO pair's shared prompt computed once.

TRL's DPO batch is [chosen rows; rejected rows], each prompt + completion, right-padded to the longest row;
a step runs every row through the model. On the bench's pairs 40% of those tokens are padding or the second
copy of a prompt (bench/bench_training.py). In a causal decoder the hidden state of a position depends only on
the tokens up to it, so rows i and i + n/2 (a pair) share their hidden states over their common prefix (the
prompt, often more). Here each pair becomes one segment: the chosen row whole, then the rejected row's tokens
after the common prefix, with their own position ids and a mask that lets them see the prefix but not the
chosen tail; segments are packed into rows (`_rows`) under a block mask. The per-position results are
gathered back into the batch's layout, so the loss and its gradients are those of the padded batch
(tests/test_training_packing.py checks both).

A prefix common to every row of the batch (the chat template's system prompt and the user turn's header: 24
tokens of SmolLM2's template, 9.5% of the bench's token positions in batches of 4 pairs) is computed once:
one forward of the prefix alone, whose keys and values every packed row attends to as a cache
(`Packed.prefix`), so the segments start after it and more of them fit a row. Gradients flow into the prefix
from every row, so they are the padded batch's as before. Not under activation checkpointing, which drops a
layer's cache.

TRL 1.16's own `padding_free` is disabled ("temporarily unavailable after a refactor") and never shared the
prompt, hence this. It is used only for decoders whose attention takes a custom 4D mask and position ids as
given (`PACKABLE`); anything else keeps the padded batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PACKABLE = frozenset({"llama", "mistral", "qwen2", "qwen3"})
WIDTH_COST = 2000  # a row's positions cost (1 + width / WIDTH_COST) each: attention grows with the width (by
# FLOPs a position's attention costs width / 3,070 of its linear layers in SmolLM2; attention runs at a lower rate)
PREFIX_MIN_SAVED = 16  # share the batch's common prefix once it saves this many token positions: below that the
# saving is small against the prefix's own forward (one more pass through every layer, on a few tokens); not tuned


@dataclass
class Packed:
    input_ids: torch.Tensor  # [rows, width]
    position_ids: torch.Tensor  # [rows, width]
    allowed: torch.Tensor  # [rows, 1, width, prefix + width] bool: query may attend key
    index: torch.Tensor  # [batch rows, batch width]: flat packed position of each batch position (-1: pad);
    # positions of the shared prefix read its own outputs, flat after the rows' (rows * width + position)
    prefix: torch.Tensor | None = None  # [prefix tokens]: every row's common first tokens, computed once


def can_pack(model, kwargs: dict) -> bool:
    """Only a plain right-padded token batch on a listed decoder without a sliding window shorter than it."""
    config = model.config.get_text_config()
    given = {name for name, value in kwargs.items() if value is not None and value is not False}
    if config.model_type not in PACKABLE or given - {"input_ids", "attention_mask", "use_cache", "return_dict"}:
        return False  # e.g. output_attentions or embeddings asked for: not the training batch
    ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
    if ids is None or ids.dim() != 2 or (mask is not None and mask.dim() != 2):
        return False
    window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    return not window or ids.shape[1] <= window


def _lengths(ids: torch.Tensor, mask: torch.Tensor | None) -> list[int] | None:
    if mask is None:
        return [ids.shape[1]] * ids.shape[0]
    lengths = mask.sum(1)
    positions = torch.arange(mask.shape[1]).unsqueeze(0)
    if not torch.equal(mask.bool(), positions < lengths.unsqueeze(1)):
        return None  # not right-padded: leave the batch as it is
    return lengths.tolist()


def _agreed(rows: torch.Tensor) -> int:
    """How many first columns all rows of `rows` [k, n] agree on."""
    differs = (rows != rows[:1]).any(0).nonzero()
    return int(differs[0]) if differs.numel() else rows.shape[1]


def _common_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    n = min(a.numel(), b.numel())
    return _agreed(torch.stack([a[:n], b[:n]]))


def _batch_prefix(ids: torch.Tensor, lengths: list[int]) -> int:
    """How many first tokens every row shares, leaving each row at least one token of its own."""
    return _agreed(ids[:, : max(min(lengths) - 1, 0)])


def _rows(sizes: list[int]) -> list[list[int]]:
    """Segments (by their sizes) into rows. Every row is as wide as the fullest, so the rest of the others is
    computed for nothing: for each row count, deal the segments longest first each to the emptiest row, and keep
    the count whose positions cost least (`WIDTH_COST`). On the bench's batches of 4 pairs that computes 4% more
    positions than the segments hold, where rows of at most 256 tokens filled first-fit computed 20% more."""
    order = sorted(range(len(sizes)), key=lambda s: -sizes[s])
    best, best_cost = None, float("inf")
    for count in range(1, len(sizes) + 1):
        rows, loads = [[] for _ in range(count)], [0] * count
        for seg in order:
            emptiest = loads.index(min(loads))
            rows[emptiest].append(seg)
            loads[emptiest] += sizes[seg]
        width = max(loads)
        cost = count * width * (1 + width / WIDTH_COST)
        if cost < best_cost:
            best, best_cost = [row for row in rows if row], cost
    return best


def pack(ids: torch.Tensor, mask: torch.Tensor | None, pad_id: int, share_prefix: bool = True) -> Packed | None:
    """The packed form of a right-padded batch, or None when it is not right-padded. With `share_prefix`, a
    prefix common to all rows is taken out of the segments into `Packed.prefix` where that saves enough."""
    lengths = _lengths(ids, mask)
    if lengths is None:
        return None
    rows = ids.shape[0]
    half = rows // 2 if rows % 2 == 0 else 0
    prefix = _batch_prefix(ids, lengths) if share_prefix else 0
    if prefix * ((half or rows) - 1) < PREFIX_MIN_SAVED:
        prefix = 0
    # a segment: [(batch row, first position, shared)] parts; shared = positions of the first part the second sees
    segments = []
    for row in range(half or rows):
        if not half:
            segments.append(((row, prefix, lengths[row]),))
            continue
        other = row + half
        shared = _common_prefix(ids[row, : lengths[row]], ids[other, : lengths[other]])
        segments.append(((row, prefix, lengths[row]), (other, shared, lengths[other])))
    sizes = [sum(end - start for _, start, end in seg) for seg in segments]
    bins = _rows(sizes)
    width = max(sum(sizes[seg] for seg in members) for members in bins)
    packed_ids = torch.full((len(bins), width), pad_id, dtype=ids.dtype)
    position = torch.zeros((len(bins), width), dtype=torch.long)
    # per packed token: its segment (pads: their own), its branch (0 chosen / 1 rejected tail), the segment's
    # shared length; attention: same segment, not later, and same branch or a shared position
    group = torch.arange(-1, -width - 1, -1).repeat(len(bins), 1)
    branch = torch.zeros((len(bins), width), dtype=torch.long)
    shared_of = torch.zeros((len(bins), width), dtype=torch.long)
    index = torch.full(ids.shape, -1, dtype=torch.long)
    for b, members in enumerate(bins):
        column = 0
        for seg in members:
            first_row = segments[seg][0][0]
            shared = segments[seg][1][1] if len(segments[seg]) > 1 else 0
            for part, (row, start, end) in enumerate(segments[seg]):
                span = slice(column, column + end - start)
                packed_ids[b, span] = ids[row, start:end]
                position[b, span] = torch.arange(start, end)
                group[b, span] = seg
                branch[b, span] = part
                shared_of[b, span] = shared
                index[row, start:end] = b * width + torch.arange(column, column + end - start)
                if part:  # the pair's shared positions are the first part's
                    index[row, prefix:start] = index[first_row, prefix:start]
                column += end - start
    index[:, :prefix] = len(bins) * width + torch.arange(prefix)
    same = group.unsqueeze(2) == group.unsqueeze(1)
    causal = position.unsqueeze(1) <= position.unsqueeze(2)
    visible = (branch.unsqueeze(2) == branch.unsqueeze(1)) | (position.unsqueeze(1) < shared_of.unsqueeze(2))
    allowed = same & causal & visible
    if prefix:  # every position, padding too, sees the whole prefix (which no row's padding could precede)
        allowed = torch.cat([allowed.new_ones((len(bins), width, prefix)), allowed], dim=2)
    return Packed(packed_ids, position, allowed.unsqueeze(1), index, ids[0, :prefix].clone() if prefix else None)


def attention_mask(packed: Packed, model, dtype: torch.dtype) -> torch.Tensor:
    """The 4D mask in the form the model's attention adds or selects with: bool for SDPA, additive otherwise."""
    if model.config._attn_implementation == "sdpa":
        return packed.allowed
    blocked = torch.zeros(packed.allowed.shape, dtype=dtype)
    return blocked.masked_fill_(~packed.allowed, torch.finfo(dtype).min)


def hidden_states(model, packed: Packed) -> torch.Tensor:
    """`model.base_model`'s last hidden states for the packed rows (then the shared prefix's), flat:
    [packed tokens, size], read through `packed.index`."""
    dtype = model.get_input_embeddings().weight.dtype
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
    cache, prefix_out = None, None
    if packed.prefix is not None:
        first = model.base_model(input_ids=packed.prefix.unsqueeze(0), use_cache=True)
        cache, prefix_out = first.past_key_values, first.last_hidden_state[0]
        rows = packed.input_ids.shape[0]
        for layer in cache.layers:  # a view per row; each row's keys are concatenated onto it, with gradients
            layer.keys, layer.values = (t.expand(rows, -1, -1, -1) for t in (layer.keys, layer.values))
    out = model.base_model(
        input_ids=packed.input_ids,
        position_ids=packed.position_ids,
        use_cache=False,
        past_key_values=cache,
        attention_mask=attention_mask(packed, model, dtype),
    ).last_hidden_state
    out = out.reshape(-1, out.shape[-1])
    return out if prefix_out is None else torch.cat([out, prefix_out])
