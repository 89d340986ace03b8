"""Before / after: a few held-out prompts answered by the base and by the trained model, side by side.

Run by the worker when a run ends, while the trained model is still in memory: with LoRA the base is the
same weights with the adapter switched off, so no second model is loaded; full fine-tuning answers with the
frozen reference copy where the method keeps one. Both answers of a prompt use the same sampling seed, so
the difference is the training, not the dice. The rows go into the run card, which the Train tab shows.
"""

from __future__ import annotations

import contextlib

from .split import prompt_key

MAX_NEW_TOKENS = 160
TEMPERATURE = 0.7
TOP_P = 0.9


def _messages(prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _answer(model, tokenizer, messages: list[dict], seed: int, autocast, max_new_tokens: int = MAX_NEW_TOKENS) -> str:
    import torch

    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = {k: v.to(model.device) for k, v in ids.items()}
    torch.manual_seed(seed)
    with torch.inference_mode(), autocast():
        out = model.generate(
            **ids,
            do_sample=True,
            temperature=TEMPERATURE,
            top_p=TOP_P,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def answer_side_by_side(trainer, loaded, prompts: list, count: int, seed: int, heldout: bool = True) -> list[dict]:
    """Up to `count` distinct prompts, each answered by the base and the trained model with the same seed."""
    import torch

    model = trainer.accelerator.unwrap_model(trainer.model)
    tokenizer = loaded.tokenizer
    if hasattr(model, "disable_adapter"):
        base_context = model.disable_adapter
        base_model = model
    elif loaded.ref_model is not None:
        base_context, base_model = contextlib.nullcontext, loaded.ref_model
    else:
        return []  # full ORPO/SimPO keeps no copy of the base in memory
    bf16 = bool(getattr(trainer.args, "bf16", False))
    device = "cuda" if model.device.type == "cuda" else "cpu"

    def autocast():
        return torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)

    seen, rows = set(), []
    was_training = model.training
    model.eval()
    try:
        for prompt in prompts:
            key = prompt_key(prompt)
            if key in seen:
                continue
            seen.add(key)
            messages = _messages(prompt)
            answer_seed = seed + len(rows)
            trained = _answer(model, tokenizer, messages, answer_seed, autocast)
            with base_context():
                base = _answer(base_model, tokenizer, messages, answer_seed, autocast)
            rows.append(
                {
                    "prompt": messages[-1]["content"],
                    "base": base,
                    "trained": trained,
                    "seed": answer_seed,
                    "heldout": heldout,
                }
            )
            if len(rows) >= count:
                break
    finally:
        model.train(was_training)
    return rows
