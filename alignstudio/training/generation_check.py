"""Did generation move? A run can learn to tell labeled pairs apart without changing what it writes (a length
preference learned at held-out accuracy 1.00 while the answers stayed at 72 words against the base's 76). So
when a policy run ends, the base's and the trained model's answers to the same held-out prompts (the
before/after answers, same seeds) are compared with the best judge the run has:

- a reward model trained on the same data (the newest registered one whose reward.json names this run's data
  fingerprint): how many of the trained answers it scores above the base's;
- else the run's implicit reward (DPO, KTO): r = beta * (log pi(answer) - log pi_ref(answer)), the quantity whose
  difference is the held-out `rewards/margins`; how much the trained answers gain over the base's is set
  against how far the model separates the held-out pairs;
- else (ORPO, SimPO, a continued adapter whose reference is gone by now) the style statistics: words, list
  items and markdown marks.

`compare_generation` measures (torch, at the end of the run, main process); `generation_note` reads the measures
(pure) and says "learned to tell pairs apart, generation barely moved" when that is the case.
"""

from __future__ import annotations

import contextlib
import re
from statistics import fmean

MOVED_SHARE = 0.25  # the trained answers gain less than this share of the held-out pair margin: barely moved
LENGTH_MOVED = 0.10  # a mean length change below 10% is "the same length"
MIN_PROMPTS = 3  # fewer compared answers (compare_prompts) make no claim: one answer is one roll of the dice
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s", re.MULTILINE)
_MARKDOWN = re.compile(r"^\s*#{1,6}\s|\*\*|__|`", re.MULTILINE)


def style(text: str) -> dict:
    return {
        "words": len(text.split()),
        "list_items": len(_LIST_ITEM.findall(text)),
        "markdown": len(_MARKDOWN.findall(text)),
    }


def _reference(trainer, loaded, spec):
    """(policy model, a context in which the model is the reference, or the reference model), or None."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not spec.uses_reference:
        return None  # ORPO, SimPO: no implicit reward of the beta * log-ratio kind
    if hasattr(model, "disable_adapter") and not loaded.continued_from:
        return model, model.disable_adapter, model  # LoRA: the base is the same weights with the adapter off
    if loaded.ref_model is not None:
        return model, contextlib.nullcontext, loaded.ref_model
    return None


def reward_model_for(store, fingerprint: str) -> str | None:
    """The folder of the newest registered reward model trained on the data with this fingerprint, or None."""
    import json
    from pathlib import Path

    from .reward import REWARD_FILE, REWARD_KIND

    for version in reversed(store.model_versions()):
        meta = Path(version["path"]) / REWARD_FILE
        if version["kind"] == REWARD_KIND and meta.is_file():
            try:
                if json.loads(meta.read_text(encoding="utf-8")).get("data_fingerprint") == fingerprint:
                    return version["path"]
            except (OSError, ValueError):
                continue
    return None


def _reward_margins(folder: str, before_after: list[dict], max_length: int) -> list[float]:
    from .reward import load_reward_model, score_texts

    model, tokenizer, _ = load_reward_model(folder)
    prompts = [r["prompt"] for r in before_after]
    trained = score_texts(model, tokenizer, prompts, [r["trained"] for r in before_after], max_length=max_length)
    base = score_texts(model, tokenizer, prompts, [r["base"] for r in before_after], max_length=max_length)
    return [t - b for t, b in zip(trained, base)]


def compare_generation(trainer, loaded, spec, before_after: list[dict], reward_model: str | None = None) -> dict | None:
    """Style of both sides and, with the best judge the run has (`reward_model`, else the implicit reward where the
    run has a reference), the mean score gain of the trained answers over the base's (`reward_margin` or
    `implicit_margin`) and how many of them gained (`trained_preferred`)."""
    if not before_after:
        return None
    base = [style(r["base"]) for r in before_after]
    trained = [style(r["trained"]) for r in before_after]
    out = {"prompts": len(before_after), "judge": "style"}
    for key in ("words", "list_items", "markdown"):
        out[f"base_{key}"] = round(fmean(s[key] for s in base), 2)
        out[f"trained_{key}"] = round(fmean(s[key] for s in trained), 2)
    if reward_model:
        margins = _reward_margins(reward_model, before_after, spec.max_length)
        return out | dict(
            judge="reward",
            reward_model=reward_model,
            reward_margin=round(fmean(margins), 4),
            trained_preferred=sum(m > 0 for m in margins),
            scored=len(margins),
        )
    found = _reference(trainer, loaded, spec)
    if found is None:
        return out
    import torch

    from .drift import autocast_for

    policy, reference_context, reference = found
    margins = []
    was_training = policy.training
    policy.eval()
    try:
        with torch.inference_mode(), autocast_for(policy, trainer.args):
            for row in before_after:
                messages = [{"role": "user", "content": row["prompt"]}]
                rewards = []
                for answer in (row["trained"], row["base"]):
                    pol = answer_logprob(policy, loaded.tokenizer, messages, answer)
                    with reference_context():
                        ref = answer_logprob(reference, loaded.tokenizer, messages, answer)
                    if pol is None or ref is None:
                        break
                    rewards.append(spec.beta * (pol[0] - ref[0]))
                if len(rewards) == 2:
                    margins.append(rewards[0] - rewards[1])
    finally:
        policy.train(was_training)
    if margins:
        out.update(
            judge="implicit",
            implicit_margin=round(fmean(margins), 4),
            trained_preferred=sum(m > 0 for m in margins),
            scored=len(margins),
        )
    return out


def generation_note(generation: dict | None, pair_margin: float | None) -> str | None:
    """The words of "generation barely moved" with its figures, or None when generation moved (or is unmeasured)."""
    if not generation or generation.get("prompts", 0) < MIN_PROMPTS:
        return None
    base_words, trained_words = generation["base_words"], generation["trained_words"]
    length_same = abs(trained_words - base_words) <= LENGTH_MOVED * max(base_words, 1.0)
    words = f"the trained answers average {trained_words:.0f} words against the base's {base_words:.0f}"
    if generation.get("judge") == "reward":  # a judge of this very preference: the trained answers won half or less
        won = generation["trained_preferred"]
        if not (length_same and won <= generation["scored"] / 2):
            return None
        return (
            f"a reward model trained on the same labels scores the trained answer higher on only {won} of "
            f"{generation['scored']} held-out prompts, and {words}"
        )
    if generation.get("judge") == "implicit" and pair_margin and pair_margin > 0:
        if generation["scored"] < MIN_PROMPTS:
            return None
        gain = generation["implicit_margin"]
        if not (length_same and gain < MOVED_SHARE * pair_margin):
            return None
        return (
            f"on {generation['scored']} held-out prompts the trained answers gain {gain:.3f} in the run's implicit "
            f"reward over the base's answers, against a margin of {pair_margin:.3f} between the held-out pairs, and "
            f"{words}"
        )
    same_style = all(
        abs(generation[f"trained_{key}"] - generation[f"base_{key}"]) < 0.5 for key in ("list_items", "markdown")
    )
    if not (length_same and same_style):
        return None
    return f"judged by style on {generation['prompts']} held-out prompts, {words}, with the same lists and markdown"


def answer_logprob(model, tokenizer, messages: list[dict], answer: str) -> tuple[float, int] | None:
    """(sum of the answer tokens' log-probabilities given the prompt, their count) under `model` (chat template;
    call under inference mode and the run's autocast), or None where the template rewrites the prompt once
    answered, so the answer's tokens cannot be told apart."""
    import torch
    import torch.nn.functional as F

    prompt = _ids(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True))
    full = _ids(tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=True))
    if len(full) <= len(prompt) or full[: len(prompt)] != prompt:
        return None
    ids = torch.tensor([full], device=model.device)
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, :-1].float()
    labels = ids[0, 1:].clone()
    labels[: len(prompt) - 1] = -100  # score the answer's tokens only
    return -float(F.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")), int((labels != -100).sum())


def _ids(encoded) -> list[int]:
    ids = encoded["input_ids"] if isinstance(encoded, dict) or hasattr(encoded, "keys") else encoded
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)
