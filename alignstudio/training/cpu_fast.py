"""CPU fast paths for TRL's DPO / KTO training (bf16 autocast over a bf16 LoRA base): what the worker turns on
when it trains on a CPU. Each was measured with bench/bench_training.py and the profiler on SmolLM2-135M.

1. The LM head. TRL's DPO and KTO trainers patch the model so that `model(..., labels=..., fused_lm_head=True)` returns
per-token log-probs without materializing the logits. On a GPU that runs a Triton kernel; on a CPU it falls
back to torch ops that score every position (prompt and padding included) in float32, vocabulary tile by
tile, with the projection upcast to float32: on SmolLM2 (49k-token vocabulary) that fallback was ~65% of a
CPU training step (bench/bench_training.py). On CPU we replace it with the plain computation on the positions
that have a label: the projection under the trainer's autocast (bf16), one float32 `log_softmax`, a gather.
The metric-only outputs (entropy, mean logit, top-1 hit) are computed from the same logits without
gradients. Returns the same `FusedCausalLMOutput`, so the trainers' losses and metrics read it unchanged.

Models whose head scales or soft-caps its logits keep TRL's own path (this one does neither).

2. Attention. PyTorch's CPU flash-attention kernel is slow backwards in bf16: plain ("eager") attention made
a SmolLM2 forward+backward ~1.4x faster at these lengths. Eager attention keeps the [heads, T, T] weights of
every layer for backward, so it is chosen only when that fits in `EAGER_ATTENTION_BUDGET`.

3. PEFT casts each LoRA layer's input to the adapter's float32 before the adapter matmul, which autocast then
casts back to bf16: two copies of every activation per adapted layer. Under autocast the cast is skipped.

4. Packing (packing.py): the head's forward runs the batch as packed rows, without padding and with each DPO
pair's common prefix computed once; in bf16 and in float32 alike.

5. Memory kept for reuse (`keep_freed_memory`): a training step allocates and frees the same activation and
gradient sizes (a few MB each) every step, and glibc hands such blocks back to the OS, so every new tensor
page-faults on its first write.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import types

import torch
from torch.utils.checkpoint import checkpoint

from . import packing

# above this many scored tokens per call, the head runs in checkpointed chunks so that the float32
# log-softmax kept for backward stays ~200 MB per chunk for a 50k vocabulary
TOKEN_CHUNK = 1024
EAGER_ATTENTION_BUDGET = 2 << 30  # bytes of attention weights kept for backward, all layers together
_TRAINER_MODULES = ("trl.trainer.dpo_trainer", "trl.trainer.kto_trainer")
_building = threading.local()  # set while a trainer is constructed: its only head calls precompute log-probs


def _checkpointing(model) -> bool:
    """Whether activation checkpointing is on (transformers 5 renamed the flag; the old name warns)."""
    flag = getattr(model, "is_activation_checkpointing", None)
    return bool(model.is_gradient_checkpointing if flag is None else flag)


def keep_freed_memory() -> bool:
    """Keep this process's freed blocks in its heap for the next step instead of returning them to the OS.

    By default glibc serves large blocks with fresh `mmap`s (the head's logits are ~100 MB), gives each
    thread that allocates its own arena (the backward allocates outside the main one), and trims a heap
    whenever its free top passes a few MB, so each step's activations and gradients land on new pages that
    fault on first write: ~240k page faults per SmolLM2 DPO step of 4 pairs, against ~5k with one arena, no
    mmaps and trimming only past 1 GB of free top; the step ran ~10% faster (torch profiler, same batch).
    tcmalloc or jemalloc would also fix it, but only through LD_PRELOAD of a system package; glibc's own
    `mallopt` needs nothing. Process-wide, so only the training process calls it. False where the C
    library is not glibc."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8
    return all(
        mallopt(option, value) for option, value in ((m_arena_max, 1), (m_mmap_max, 0), (m_trim_threshold, 1 << 30))
    )


def supports_compact_head(model) -> bool:
    """A CPU causal LM with a plain linear head (no logit scaling or soft-capping)."""
    config = model.config.get_text_config()
    scaled = any(
        getattr(config, name, None) not in (None, 1.0)
        for name in (
            "final_logit_softcapping",
            "logit_scale",
            "output_multiplier",
            "lm_head_multiplier",
            "logits_scaling",
        )
    )
    head = model.get_output_embeddings()
    return (
        not scaled
        and isinstance(head, torch.nn.Linear)
        and head.weight.device.type == "cpu"
        and hasattr(model, "base_model")
    )


def _score(
    hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Linear, temperature: float, extras: bool
) -> tuple[torch.Tensor, ...]:
    """Log-prob of each target under `head(hidden)`, plus (entropy, mean logit, is-top-1) when asked."""
    logits = head(hidden).float()
    if temperature != 1.0:
        logits = logits / temperature
    log_probs = torch.log_softmax(logits, dim=-1)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    if not extras:
        return (picked,)
    with torch.no_grad():
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        mean_logits = logits.mean(-1)
        is_top1 = logits.argmax(-1) == targets
    return picked, entropy, mean_logits, is_top1


def _score_chunked(hidden, targets, head, temperature, extras):
    if hidden.shape[0] <= TOKEN_CHUNK or not torch.is_grad_enabled():
        return _score(hidden, targets, head, temperature, extras)
    parts = [
        checkpoint(
            lambda h, t: _score(h, t, head, temperature, extras), hidden[piece], targets[piece], use_reentrant=False
        )  # the metric outputs come out of the same pass, without gradients
        for piece in (slice(start, start + TOKEN_CHUNK) for start in range(0, hidden.shape[0], TOKEN_CHUNK))
    ]
    return tuple(torch.cat(column) for column in zip(*parts))


def install(model, outputs: tuple[str, ...] = ("log_probs",), temperature: float = 1.0, pack: bool = True) -> bool:
    """Make `fused_lm_head=True` calls of `model` (already patched by TRL) use the compact CPU head, over packed
    rows where the batch allows (`pack`, packing.py). Returns False, leaving TRL's head, where the model does
    not qualify or WPO weights are asked for."""
    from trl.trainer.utils import FusedCausalLMOutput

    if not supports_compact_head(model) or "log_sum_sq_probs" in outputs:
        return False
    trl_forward = model.forward  # TRL's patched forward: the path for everything but fused_lm_head=True
    extras = bool({"entropy", "mean_logits", "is_top1"} & set(outputs))

    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or kwargs.get("output_router_logits"):
            return trl_forward(
                *args,
                fused_lm_head=fused_lm_head,
                labels=labels,
                shift_labels=shift_labels,
                num_items_in_batch=num_items_in_batch,
                **kwargs,
            )
        kwargs["use_cache"] = False
        targets = labels[:, 1:] if shift_labels is None else shift_labels
        mask = targets != -100
        # pad tokens of packed rows attend only to themselves and are never read: any id will do
        packed = (
            packing.pack(
                kwargs["input_ids"],
                kwargs.get("attention_mask"),
                pad_id=0,
                share_prefix=not (self.training and _checkpointing(self)),
            )
            if pack and not args and packing.can_pack(self, kwargs)
            else None
        )
        if packed is not None:
            index = (packed.index[:, :-1] if shift_labels is None else packed.index)[mask]
            if not bool((index >= 0).all()):
                packed = None  # a label on padding: not TRL's batch, so not packed
        if packed is not None:
            selected = packing.hidden_states(self, packed)[index]
        else:
            hidden = self.base_model(*args, **kwargs).last_hidden_state
            selected = (hidden[:, :-1] if shift_labels is None else hidden)[mask]
        # the reference pass during construction reads only log-probs: skip the metric-only outputs there
        with_extras = extras and not getattr(_building, "active", False)
        scored = _score_chunked(selected, targets[mask], self.get_output_embeddings(), temperature, with_extras)
        per_position = [x.new_zeros(mask.shape).masked_scatter(mask, x) for x in scored]
        log_probs = per_position[0]
        entropy, mean_logits, is_top1 = per_position[1:] if with_extras else (None, None, None)
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(
            loss=-log_probs.sum() / count,
            log_probs=log_probs,
            entropy=entropy,
            log_sum_sq_probs=None,
            mean_logits=mean_logits,
            is_top1=is_top1,
            label_mask=mask,
            aux_loss=None,
        )

    model.forward = types.MethodType(forward, model)
    return True


@contextlib.contextmanager
def compact_lm_head_on_cpu():
    """While a DPO/KTO trainer is built, follow TRL's `add_fused_lm_head` with `install` on CPU models.

    TRL adds its head inside the trainer's constructor (which may also precompute the reference log-probs
    with it), so the hook has to be in place before construction; outside this block nothing changes.
    """
    patched = []
    for name in _TRAINER_MODULES:
        module = importlib.import_module(name)
        original = getattr(module, "add_fused_lm_head", None)
        if original is None:  # a TRL without the fused head: nothing to speed up
            continue

        def add(model, *args, _original=original, **kwargs):
            _original(model, *args, **kwargs)
            if not args and set(kwargs) <= {"outputs"}:  # temperature / fp32-head variants keep TRL's path
                install(model, kwargs.get("outputs", ("log_probs",)))

        module.add_fused_lm_head = add
        patched.append((module, original))
    _building.active = True
    try:
        yield
    finally:
        _building.active = False
        for module, original in patched:
            module.add_fused_lm_head = original


def longest_example(dataset) -> int:
    """Tokens of the longest row TRL will feed (prompt + the longer completion), from its tokenized columns."""
    import pyarrow.compute as pc

    table = dataset.with_format("arrow")[:]
    lengths = {name: pc.list_value_length(table[name]) for name in table.column_names if name.endswith("_ids")}
    if not lengths:
        return 0
    prompt = lengths.pop("prompt_ids", None)
    completions = list(lengths.values())
    longest = completions[0] if completions else prompt
    for other in completions[1:]:
        longest = pc.max_element_wise(longest, other)
    if prompt is not None and completions:
        longest = pc.add(longest, prompt)
    return int(pc.max(longest).as_py() or 0)


def attention_bytes(model, rows: int, length: int) -> int:
    """Eager attention's saved weights for one batch: float32 softmax plus its bf16 copy, every layer and head."""
    config = model.config.get_text_config()
    return rows * config.num_attention_heads * length * length * 6 * config.num_hidden_layers


def prepare_model(model, bf16: bool) -> None:
    """Before the trainer is built (it may precompute the reference log-probs, forward only): eager attention,
    whose weights are not kept without gradients. `tune_for_cpu` re-checks the choice for training."""
    if bf16 and model.config._attn_implementation == "sdpa":
        model.set_attn_implementation("eager")


def tune_for_cpu(trainer, rows_per_step: int, max_length: int) -> dict:
    """After the trainer is built: eager attention where its saved weights fit `EAGER_ATTENTION_BUDGET` (else
    back to SDPA), no LoRA input casts under autocast. Returns what was chosen (for the log)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    model = trainer.accelerator.unwrap_model(trainer.model)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    length = min(max_length, longest_example(trainer.train_dataset) or max_length)
    if trainer.args.bf16 and base.config._attn_implementation in ("sdpa", "eager"):
        fits = attention_bytes(base, rows_per_step, length) <= EAGER_ATTENTION_BUDGET
        base.set_attn_implementation("eager" if fits else "sdpa")
    chosen = {"attention": base.config._attn_implementation, "lora_input_cast": True}
    if trainer.args.bf16:
        for module in model.modules():
            if isinstance(module, BaseTunerLayer):
                module.cast_input_dtype_enabled = False
        chosen["lora_input_cast"] = False
    return chosen
