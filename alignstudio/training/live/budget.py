"""The drift budget of a live session (issue 36 item 4, applied to bursts).

A burst can lower the held-out preference loss while the policy walks away from its base. So, as in a batch run,
the perplexity of the shipped held-out text (`core.workspace.ALIGNMENT_TAX_TEXT`, measured by the batch run's own
`drift.text_perplexity` over the same DRIFT_TEXT_TOKENS) is measured once under the base (the live policy's base
is its model with the adapter switched off) and after each burst under the policy: drift = policy / base - 1. A
burst whose drift is over the session's budget is not kept as a version. The base's perplexity is kept in the
session folder's drift.json, so a restarted trainer compares against the same base.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ...core.workspace import ALIGNMENT_TAX_TEXT
from ..drift import DRIFT_FILE, DRIFT_TEXT_TOKENS, autocast_for, text_perplexity


class LiveDrift:
    def __init__(self, folder_path: Path, budget_percent: float, text: str | None = None):
        self.path = Path(folder_path) / DRIFT_FILE
        self.budget = budget_percent / 100 if budget_percent else None  # a fraction; None = off
        self.text = text if text is not None else ALIGNMENT_TAX_TEXT.read_text(encoding="utf-8")
        saved = json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {}
        self.base_ppl: float | None = saved.get("base_perplexity")

    @property
    def on(self) -> bool:
        return self.budget is not None

    def _perplexity(self, model, tokenizer, args) -> float:
        was_training = model.training
        model.eval()  # no dropout while measuring
        try:
            with autocast_for(model, args):
                return text_perplexity(model, tokenizer, self.text, max_tokens=DRIFT_TEXT_TOKENS)[0]
        finally:
            model.train(was_training)

    def _base(self, model, tokenizer, args) -> float | None:
        if self.base_ppl is None:
            with model.disable_adapter():  # the base: the same model with the adapter switched off
                ppl = self._perplexity(model, tokenizer, args)
            self.base_ppl = ppl if math.isfinite(ppl) else None
            record = {"text": ALIGNMENT_TAX_TEXT.name, "base_perplexity": self.base_ppl, "budget": self.budget}
            self.path.write_text(json.dumps(record, indent=1), encoding="utf-8")
        return self.base_ppl

    def measure(self, model, tokenizer, args) -> dict | None:
        """{perplexity, base_perplexity, drift, budget, within} of the policy as it is now, or None when the budget
        is off or the perplexity is not finite (nothing to hold against the burst)."""
        if not self.on or self._base(model, tokenizer, args) is None:
            return None
        ppl = self._perplexity(model, tokenizer, args)
        if not math.isfinite(ppl):
            return None
        drift = ppl / self.base_ppl - 1
        return {
            "perplexity": ppl,
            "base_perplexity": self.base_ppl,
            "drift": drift,
            "budget": self.budget,
            "within": drift <= self.budget,
        }
