"""Did generation move? A run can learn to tell labeled pairs apart without changing what it writes (a length
preference learned at held-out accuracy 1.00 while the answers stayed at 72 words against the base's 76). So
when a policy run ends, the base's and the trained model's answers to the same held-out prompts (the
before/after answers, same seeds) are compared with the best judge the run has:

- the run's implicit reward (DPO, KTO): r = beta * (log pi(answer) - log pi_ref(answer)), the quantity whose
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


def compare_generation(trainer, loaded, spec, before_after: list[dict]) -> dict | None:
    """Style of both sides and, where the run has a reference, the mean implicit-reward gain of the trained answers
    over the base's (`implicit_margin`) and how many of them gained (`trained_preferred`)."""
    if not before_after:
        return None
    base = [style(r["base"]) for r in before_after]
    trained = [style(r["trained"]) for r in before_after]
    out = {"prompts": len(before_after), "judge": "style"}
    for key in ("words", "list_items", "markdown"):
        out[f"base_{key}"] = round(fmean(s[key] for s in base), 2)
        out[f"trained_{key}"] = round(fmean(s[key] for s in trained), 2)
    found = _reference(trainer, loaded, spec)
    if found is None:
        return out
    import torch

    from .drift import answer_logprob, autocast_for

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
