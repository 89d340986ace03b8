"""The drift budget: runs that stop before they break the model.

A preference loss can keep falling while the model walks away from its base (the effect benchmark's concise
rule: answers of 9 words against 82, perplexity on held-out text +7.4%). So, before training, the base model
answers a few held-out prompts (sampled with fixed seeds, the way it would answer a user), and the perplexity
of those answers under the model is measured once. At every held-out evaluation the same perplexity is measured
under the policy: `eval_drift` = policy / base - 1 goes into the held-out row beside `eval_loss`. Keep-the-best
then ranks checkpoints by `eval_loss_in_budget` (the held-out loss where drift is within the budget, +inf
otherwise: TrainingArguments' `metric_for_best_model`), and the run stops once drift has exceeded the budget for
`patience` evaluations in a row. The base's answers and perplexity are kept in drift.json in the run folder, so
a resumed run compares against the same base.

Generated answers rather than the held-out pairs' chosen texts: DPO pushes the chosen texts up and the rejected
ones down by design, so their perplexity measures the objective, not the drift. Measured on SmolLM2-135M on
one loaded CPU core, generating the DRIFT_PROMPTS answers once took 38 s and scoring them 2.7 s per evaluation
(DRIFT_NEW_TOKENS). Answer length is not measured at every evaluation (a generation per evaluation would cost
14 times the scoring on a CPU); the before/after answers at the end of the run show it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from transformers import TrainerCallback

from .before_after import _answer, _messages
from .split import prompt_key

DRIFT_FILE = "drift.json"
DRIFT_PROMPTS = 4  # held-out prompts the base answers once; their answers are scored at every evaluation
DRIFT_NEW_TOKENS = 96  # per answer: enough text to measure, while the generation and each evaluation's scoring
# stay cheap. SmolLM2-135M, fp32, one CPU core at load average 6: 4 answers of up to 160 tokens took 110 s to
# generate and 9 s to score; of up to 96 tokens, 38 s and 2.7 s.
KEPT_METRIC = "eval_loss_in_budget"  # TrainingArguments.metric_for_best_model under a drift budget


def drift_on(spec, heldout: bool) -> bool:
    """Whether the run measures drift: a budget, a held-out split, and a policy (a reward model generates nothing).
    Not under DeepSpeed: ZeRO-3 shards the weights, and generating the base's answers would need every process
    to step in lockstep."""
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"
    return bool(heldout and spec.drift_fraction and not deepspeed)


def autocast_for(model, args):
    import torch

    device = "cuda" if model.device.type == "cuda" else "cpu"
    dtype = torch.float16 if getattr(args, "fp16", False) else torch.bfloat16
    return torch.autocast(
        device, dtype=dtype, enabled=bool(getattr(args, "bf16", False) or getattr(args, "fp16", False))
    )


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


def answers_perplexity(model, tokenizer, answers: list[dict], autocast) -> float:
    """exp(mean negative log-likelihood) of the answers' tokens given their prompts, pooled over all tokens. One
    answer per forward: no padding to get wrong, and there are only a few."""
    import torch

    total, count = 0.0, 0
    with torch.inference_mode(), autocast():
        for item in answers:
            scored = answer_logprob(model, tokenizer, item["messages"], item["answer"])
            if scored is not None:
                total, count = total - scored[0], count + scored[1]
    return math.exp(total / count) if count else float("nan")


def _ids(encoded) -> list[int]:
    ids = encoded["input_ids"] if isinstance(encoded, dict) or hasattr(encoded, "keys") else encoded
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)


def base_answers(model, tokenizer, prompts: list, seed: int, autocast) -> list[dict]:
    """Up to DRIFT_PROMPTS distinct prompts, each answered once by the model as it is now (the base)."""
    seen, out = set(), []
    for prompt in prompts:
        key = prompt_key(prompt)
        if key in seen:
            continue
        seen.add(key)
        messages = _messages(prompt)
        answer = _answer(model, tokenizer, messages, seed + len(out), autocast, DRIFT_NEW_TOKENS)
        if answer.strip():
            out.append({"messages": messages, "answer": answer})
        if len(out) >= DRIFT_PROMPTS:
            break
    return out


class DriftCallback(TrainerCallback):
    """Measures drift at each held-out evaluation, ranks checkpoints within the budget, stops past it.

    Must come before the metrics callback (its `on_log` adds the drift to the held-out row that callback writes)
    and before early stopping (its `on_evaluate` adds KEPT_METRIC, which early stopping reads)."""

    def __init__(self, run_path: Path, prompts: list, budget: float, patience: int, seed: int, tokenizer, main: bool):
        self.path = Path(run_path) / DRIFT_FILE
        self.prompts, self.budget, self.patience, self.seed = prompts, budget, patience, seed
        self.tokenizer, self.main = tokenizer, main
        self.answers: list[dict] = []
        self.base_ppl: float | None = None
        self.by_step: dict[int, float] = {}
        self.over = 0  # evaluations over the budget in a row
        self.stopped_at: int | None = None

    def _measure(self, model, args) -> float:
        was_training = model.training
        model.eval()  # no dropout while measuring
        try:
            return answers_perplexity(model, self.tokenizer, self.answers, lambda: autocast_for(model, args))
        finally:
            model.train(was_training)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.path.is_file():  # a resumed run: the base's answers and perplexity from its first start
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            self.answers, self.base_ppl = saved["answers"], saved["base_perplexity"]
            return
        if state.global_step > 0:  # resumed from a run that measured no drift: no base left to compare with
            print("drift: not measured (this run started without a drift budget)", flush=True)
            return
        was_training = model.training
        model.eval()
        try:
            self.answers = base_answers(
                model, self.tokenizer, self.prompts, self.seed, lambda: autocast_for(model, args)
            )
        finally:
            model.train(was_training)
        ppl = self._measure(model, args) if self.answers else float("nan")
        self.base_ppl = ppl if math.isfinite(ppl) else None
        if self.base_ppl is None:
            print("drift: not measured (no held-out prompt gave a scorable answer)", flush=True)
            return
        words = sum(len(a["answer"].split()) for a in self.answers) / len(self.answers)
        print(
            f"drift: the base answered {len(self.answers)} held-out prompts ({words:.0f} words on average), "
            f"perplexity {self.base_ppl:.3f}; budget +{100 * self.budget:.1f}%",
            flush=True,
        )
        if self.main:
            record = {"answers": self.answers, "base_perplexity": self.base_ppl, "budget": self.budget}
            self.path.write_text(json.dumps(record, indent=1), encoding="utf-8")

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if not logs or "eval_loss" not in logs or self.base_ppl is None:
            return
        ppl = self._measure(model, args)
        if math.isfinite(ppl):
            logs["eval_answers_perplexity"] = ppl
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
                f"drift: the base's answers' perplexity is {100 * drift:+.1f}% (budget +{100 * self.budget:.1f}%) "
                f"for {self.over} evaluations: stopping at step {state.global_step}",
                flush=True,
            )
