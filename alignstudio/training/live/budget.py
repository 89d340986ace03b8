"""The drift budget of a live session (issue 36 item 4, applied to bursts).

A burst can lower the held-out preference loss while the policy walks away from its base. So, as in a batch run
(`training.drift`, whose measurement this reuses), the base answers a few held-out prompts once (the adapter
switched off: the live policy's base is its model without the adapter), and after each burst the perplexity of
those answers under the policy is compared with the base's: drift = policy / base - 1. A burst whose drift is
over the session's budget is not kept as a version. The answers are kept in the session folder's drift.json, so
a restarted trainer compares against the same base. A session's first bursts may see fewer than
`drift.DRIFT_PROMPTS` held-out prompts: later bursts add answers for new held-out prompts up to that count (and
the base's perplexity is measured again over the larger set).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..drift import DRIFT_PROMPTS, answers_perplexity, autocast_for, base_answers
from ..split import prompt_key

DRIFT_FILE = "drift.json"


class LiveDrift:
    def __init__(self, folder_path: Path, budget_percent: float, seed: int):
        self.path = Path(folder_path) / DRIFT_FILE
        self.budget = budget_percent / 100 if budget_percent else None  # a fraction; None = off
        self.seed = seed
        saved = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self.answers: list[dict] = saved.get("answers", [])
        self.base_ppl: float | None = saved.get("base_perplexity")

    @property
    def on(self) -> bool:
        return self.budget is not None

    def _prepare(self, model, tokenizer, heldout: list[dict], args) -> None:
        """Base answers for up to DRIFT_PROMPTS held-out prompts (new ones generated with the adapter off), and
        the base's perplexity on them whenever the set grew."""
        have = {prompt_key(a["messages"]) for a in self.answers}
        fresh, seen = [], set(have)
        for row in heldout:
            key = prompt_key(row["prompt"])
            if key not in seen:
                seen.add(key)
                fresh.append(row["prompt"])
        room = DRIFT_PROMPTS - len(self.answers)
        if (room <= 0 or not fresh) and self.base_ppl is not None:
            return
        was_training = model.training
        model.eval()
        try:
            with model.disable_adapter():  # the base: the same model with the adapter switched off
                if room > 0 and fresh:
                    autocast = lambda: autocast_for(model, args)  # noqa: E731
                    seed = self.seed + len(self.answers)
                    self.answers += base_answers(model, tokenizer, fresh, seed, autocast)[:room]
                ppl = self._perplexity(model, tokenizer, args) if self.answers else float("nan")
        finally:
            model.train(was_training)
        self.base_ppl = ppl if math.isfinite(ppl) else None
        record = {"answers": self.answers, "base_perplexity": self.base_ppl, "budget": self.budget}
        self.path.write_text(json.dumps(record, indent=1), encoding="utf-8")

    def _perplexity(self, model, tokenizer, args) -> float:
        was_training = model.training
        model.eval()  # no dropout while measuring
        try:
            return answers_perplexity(model, tokenizer, self.answers, lambda: autocast_for(model, args))
        finally:
            model.train(was_training)

    def measure(self, model, tokenizer, heldout: list[dict], args) -> dict | None:
        """{perplexity, base_perplexity, drift, budget, within} of the policy as it is now, or None when the budget
        is off or no held-out prompt gave a scorable answer (nothing to hold against the burst)."""
        if not self.on:
            return None
        self._prepare(model, tokenizer, heldout, args)
        if self.base_ppl is None:
            return None
        ppl = self._perplexity(model, tokenizer, args)
        if not math.isfinite(ppl):
            return None
        drift = ppl / self.base_ppl - 1
        return {
            "perplexity": ppl,
            "base_perplexity": self.base_ppl,
            "answers": len(self.answers),
            "drift": drift,
            "budget": self.budget,
            "within": drift <= self.budget,
        }
