"""The drift budget: runs that stop before they break the model.

A preference loss can keep falling while the model walks away from its base (the effect benchmark's concise
rule: answers of 9 words against 82, perplexity on held-out text +7.4%). So the perplexity of the shipped
alignment-tax text (data/heldout_text.txt: plain encyclopedic prose, the text the Evaluate tab and the effect
benchmark measure the tax on) is measured once under the base and again at every held-out evaluation under the
policy: `eval_drift` = policy / base - 1 goes into the held-out row beside `eval_loss`. Keep-the-best then
ranks checkpoints by `eval_loss_in_budget` (the held-out loss where drift is within the budget, +inf otherwise:
TrainingArguments' `metric_for_best_model`), and the run stops once drift has exceeded the budget for `patience`
evaluations in a row. The base's perplexity is kept in drift.json in the run folder, so a resumed run compares
against the same base.

Text the preference says nothing about, rather than the base's own answers: a preference is *meant* to move the
answers. Measured with the effect benchmark's concise rule (SmolLM2, 40 training pairs), the perplexity of the
base's answers rose 1.0% / 4.5% / 10.9% / 22.4% at steps 5-20, so a 3% budget on it kept step 5 and the run
learned nothing (win rate 0.54 against the base), while the same run's alignment tax on this text was +0.0%.
Scoring the text costs one forward pass over DRIFT_TEXT_TOKENS tokens per evaluation.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from transformers import TrainerCallback

from ..core.workspace import ALIGNMENT_TAX_TEXT

DRIFT_FILE = "drift.json"
DRIFT_TEXT_TOKENS = 4096  # the whole shipped text (~3,000 SmolLM2 tokens): ~3 s per evaluation on one CPU core
KEPT_METRIC = "eval_loss_in_budget"  # TrainingArguments.metric_for_best_model under a drift budget


def drift_on(spec, heldout: bool) -> bool:
    """Whether the run measures drift: a budget, a held-out split, and a policy (a reward model is no language
    model). Not under DeepSpeed: ZeRO-3 shards the weights, and scoring the text would need every process to step
    in lockstep."""
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
    return bool(heldout and spec.drift_fraction and not deepspeed)


def autocast_for(model, args):
    import torch

    device = "cuda" if model.device.type == "cuda" else "cpu"
    dtype = torch.float16 if getattr(args, "fp16", False) else torch.bfloat16
    return torch.autocast(
        device, dtype=dtype, enabled=bool(getattr(args, "bf16", False) or getattr(args, "fp16", False))
    )


def text_perplexity(
    model, tokenizer, text: str, *, max_length: int = 512, stride: int = 256, max_tokens: int | None = None
) -> tuple[float, int]:
    """(perplexity, scored tokens) of `text` under a causal LM: a window of `max_length` tokens moves by
    `stride`, and each token is scored once, with up to `max_length - stride` tokens of context before it. The
    one perplexity of text: the drift budget here, the Evaluate tab's alignment tax and the effect benchmark."""
    import torch

    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if ids.numel() < 2:
        raise ValueError("the held-out text is too short to measure perplexity")
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None) or max_length
    max_length = min(max_length, int(limit))
    stride = min(stride, max_length)
    device = getattr(model, "device", None)
    nll, counted, previous_end = 0.0, 0, 0
    with torch.inference_mode():
        for begin in range(0, ids.numel(), stride):
            end = min(begin + max_length, ids.numel())
            window = ids[begin:end].unsqueeze(0).to(device) if device is not None else ids[begin:end].unsqueeze(0)
            target = window.clone()
            new = end - previous_end  # tokens not scored by an earlier window
            target[:, :-new] = -100
            logits = model(input_ids=window).logits.float()
            shift_logits, shift_labels = logits[:, :-1, :], target[:, 1:]
            mask = shift_labels != -100
            if mask.any():
                losses = torch.nn.functional.cross_entropy(shift_logits[mask], shift_labels[mask], reduction="sum")
                nll += float(losses)
                counted += int(mask.sum())
            previous_end = end
            if end == ids.numel():
                break
    return math.exp(nll / counted), counted


class DriftCallback(TrainerCallback):
    """Measures drift at each held-out evaluation, ranks checkpoints within the budget, stops past it.

    Must come before the metrics callback (its `on_log` adds the drift to the held-out row that callback writes)
    and before early stopping (its `on_evaluate` adds KEPT_METRIC, which early stopping reads)."""

    def __init__(self, run_path: Path, budget: float, patience: int, tokenizer, main: bool, text: str | None = None):
        self.path = Path(run_path) / DRIFT_FILE
        self.budget, self.patience = budget, patience
        self.tokenizer, self.main = tokenizer, main
        self.text = text if text is not None else ALIGNMENT_TAX_TEXT.read_text(encoding="utf-8")
        self.base_ppl: float | None = None
        self.by_step: dict[int, float] = {}
        self.over = 0  # evaluations over the budget in a row
        self.stopped_at: int | None = None

    def _measure(self, model, args) -> tuple[float, int]:
        was_training = model.training
        model.eval()  # no dropout while measuring
        try:
            with autocast_for(model, args):
                return text_perplexity(model, self.tokenizer, self.text, max_tokens=DRIFT_TEXT_TOKENS)
        finally:
            model.train(was_training)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.path.is_file():  # a resumed run: the base's perplexity from its first start
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            self.base_ppl = saved.get("base_perplexity")
            return
        if state.global_step > 0:  # resumed from a run that measured no drift: no base left to compare with
            print("drift: not measured (this run started without a drift budget)", flush=True)
            return
        ppl, tokens = self._measure(model, args)
        self.base_ppl = ppl if math.isfinite(ppl) else None
        if self.base_ppl is None:
            print("drift: not measured (the base's perplexity of the held-out text is not finite)", flush=True)
            return
        print(
            f"drift: the base's perplexity of the held-out text is {self.base_ppl:.3f} ({tokens} tokens); "
            f"budget +{100 * self.budget:.1f}%",
            flush=True,
        )
        if self.main:
            record = {"text": ALIGNMENT_TAX_TEXT.name, "tokens": tokens, "base_perplexity": self.base_ppl}
            self.path.write_text(json.dumps(record | {"budget": self.budget}, indent=1), encoding="utf-8")

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if not logs or "eval_loss" not in logs or self.base_ppl is None:
            return
        ppl, _ = self._measure(model, args)
        if math.isfinite(ppl):
            logs["eval_text_perplexity"] = ppl
            logs["eval_drift"] = self.by_step[state.global_step] = ppl / self.base_ppl - 1

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics is None or "eval_loss" not in metrics:
            return
        drift = self.by_step.get(state.global_step)
        within = drift is None or drift <= self.budget  # unmeasured counts as within: nothing to hold against it
        metrics[KEPT_METRIC] = metrics["eval_loss"] if within else math.inf
        self.over = 0 if within else self.over + 1
        if self.over >= self.patience and self.stopped_at is None:
            self.stopped_at = state.global_step
            control.should_training_stop = True
            print(
                f"drift: the held-out text's perplexity is {100 * drift:+.1f}% (budget +{100 * self.budget:.1f}%) "
                f"for {self.over} evaluations: stopping at step {state.global_step}",
                flush=True,
            )
