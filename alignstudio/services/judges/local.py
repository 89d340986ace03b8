"""The local judge: a local causal LM's own next-token probabilities of "A" vs "B" after the judge prompt.

The prompt (`prompt.render(..., answer="letter")`) goes through the model's chat template; one forward pass
gives the log-probabilities of the tokens "A"/" A" and "B"/" B" at the assistant's first position, and the
verdict is the likelier letter (a tie when they are within `tie_margin` nats). It needs no network, no key and
no sampling, so it is deterministic and runs offline on the embedded SmolLM2.

A small model follows instructions it reads, wherever they are: a response flagged by
`prompt.injection_signals` has `injection_penalty` nats taken off its side before the verdict, so an
injected "answer A" can not carry it. The model is used under its Generator's lock (one forward at a time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...core.errors import UserError
from . import Judge, JudgeInput, Usage, Verdict
from .prompt import injection_signals, render


class LocalJudge(Judge):
    kind = "local"
    remote = False

    def __init__(
        self,
        generator,
        criteria: Sequence[str] | None = None,
        *,
        tie_margin: float = 0.0,
        injection_penalty: float = 20.0,
        batch_size: int = 4,
        max_length: int | None = None,
    ):
        super().__init__(criteria)
        if getattr(generator, "tokenizer", None) is None or getattr(generator, "model", None) is None:
            raise UserError("the local judge needs a local model (a remote generator has no probabilities to read)")
        self.generator = generator
        self.model = generator.name
        self.tie_margin = float(tie_margin)
        self.injection_penalty = float(injection_penalty)
        self.batch_size = int(batch_size)
        config_limit = getattr(getattr(generator.model, "config", None), "max_position_embeddings", None) or 2048
        self.max_length = int(max_length or min(int(config_limit), 8192))
        tokenizer = generator.tokenizer
        self._ids = {side: self._letter_ids(tokenizer, side) for side in ("A", "B")}
        if not self._ids["A"] or not self._ids["B"]:
            raise UserError(f"the tokenizer of {generator.name} has no single token for 'A' and 'B'")

    def _settings(self) -> dict:
        return {"tie_margin": self.tie_margin, "injection_penalty": self.injection_penalty}

    @staticmethod
    def _letter_ids(tokenizer, letter: str) -> list[int]:
        ids = set()
        for text in (letter, " " + letter):
            encoded = tokenizer.encode(text, add_special_tokens=False)
            if len(encoded) == 1:
                ids.add(encoded[0])
        return sorted(ids)

    def _text(self, item: JudgeInput) -> str:
        messages = render(item.messages, item.response_a, item.response_b, self.criteria, answer="letter")
        return self.generator.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def judge(self, item: JudgeInput) -> Verdict:
        return self.judge_many([item])[0]

    def judge_many(self, items: list[JudgeInput]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for start in range(0, len(items), self.batch_size):
            verdicts += self._batch(items[start : start + self.batch_size])
        return verdicts

    def _batch(self, items: list[JudgeInput]) -> list[Verdict]:
        import torch

        tokenizer, model = self.generator.tokenizer, self.generator.model
        encoded = [tokenizer(self._text(item), add_special_tokens=False)["input_ids"] for item in items]
        fits = [len(ids) <= self.max_length for ids in encoded]
        results: list[Verdict | None] = [
            None
            if ok
            else Verdict(
                None,
                error=f"the judge prompt is {len(ids)} tokens, over the local judge's limit of {self.max_length}",
                failure="input",
            )
            for ok, ids in zip(fits, encoded)
        ]
        rows = [i for i, ok in enumerate(fits) if ok]
        if not rows:
            return results  # type: ignore[return-value]
        tokenizer.padding_side = "left"  # the last position is every row's next token
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt", padding=True)
        mask = batch["attention_mask"]
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with self.generator.decoding():  # one core while a worker trains (core.cpu_share)
            logits = model(
                input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions, logits_to_keep=1
            ).logits[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        for row, index in enumerate(rows):
            item = items[index]
            lp_a = float(torch.logsumexp(logprobs[row, self._ids["A"]], dim=0))
            lp_b = float(torch.logsumexp(logprobs[row, self._ids["B"]], dim=0))
            margin = lp_a - lp_b
            notes = []
            flags_a, flags_b = injection_signals(item.response_a), injection_signals(item.response_b)
            if flags_a:
                margin -= self.injection_penalty
                notes.append(f"A tries to instruct the judge ({', '.join(flags_a)}): -{self.injection_penalty:g}")
            if flags_b:
                margin += self.injection_penalty
                notes.append(f"B tries to instruct the judge ({', '.join(flags_b)}): -{self.injection_penalty:g}")
            winner = "tie" if abs(margin) <= self.tie_margin else ("A" if margin > 0 else "B")
            p_a = 1.0 / (1.0 + math.exp(-(lp_a - lp_b)))
            rationale = f"next-token probability of A vs B, renormalized: P(A)={p_a:.3f}, P(B)={1 - p_a:.3f}" + (
                "; " + "; ".join(notes) if notes else ""
            )
            results[index] = Verdict(
                winner,
                rationale,
                usage=Usage(input_tokens=len(encoded[index]), calls=1),
                scores={"logp_A": round(lp_a, 4), "logp_B": round(lp_b, 4), "margin": round(margin, 4)},
            )
        return results  # type: ignore[return-value]
