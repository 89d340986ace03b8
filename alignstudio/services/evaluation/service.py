"""The Evaluate tab's door: build the judge a form describes, evaluate a model against a baseline, read saved
reports, judge the store's pairs in bulk, and the judges' agreement with people.

Holds the store, the workspace, the loaded-model pool and the prompt sets the operations share, so a tab passes
only what a person chose (a `JudgeConfig`, an `EvalSettings`, names). The rules (a judge is measured against
people before it is trusted; what a report holds) stay in `evaluation` and `judges`. Knows nothing of Gradio.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ...core import access
from ...core.errors import UserError
from ...core.store import Store
from ...core.workspace import Workspace
from .. import remote_budget
from ..judges import Judge
from ..judges.agreement import COLUMNS as AGREEMENT_COLUMNS
from ..judges.agreement import agreement_table
from ..judges.bulk import BulkResult, judge_store
from ..judges.config import JudgeConfig, build_judge
from ..judges.protocol import JudgeCache
from ..judges.report_card import COLUMNS as CARD_COLUMNS
from ..sampling.generators import GeneratorPool
from ..sampling.prompt_sets import PromptSets
from . import EvalReport, EvalSettings, evaluate_and_save, list_reports, load_report, reports_dir


@dataclass
class EvaluationService:
    store: Store
    workspace: Workspace
    generators: GeneratorPool
    prompt_sets: PromptSets
    default_model: str
    # set by `cancel`: the running evaluation or bulk judging sends no more requests (remote_budget)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> str:
        """Stop the running evaluation or bulk judging: no request goes out after this (admins)."""
        access.require_admin("cancelling a job")
        self._cancel.set()
        return "Cancelling: no more requests are sent; what was judged so far is kept."

    def _job(self):
        """A bulk job's context: cancellable (a new job clears an old cancel) and patient over budget."""
        self._cancel = threading.Event()
        return remote_budget.cancellable(self._cancel)

    def judge(self, config: JudgeConfig) -> Judge:
        return build_judge(config, store=self.store, generators=self.generators, default_model=self.default_model)

    def evaluate(
        self, model: str, baseline: str, prompt_set: str, settings: EvalSettings, judge: JudgeConfig, progress=None
    ) -> tuple[EvalReport, Path]:
        """Generate, judge both orders (the judge measured against people first), save the report."""
        access.require_admin("evaluation")
        if not model or not baseline:
            raise UserError("choose a model and a baseline")
        prompts = self.prompt_sets.load(prompt_set)
        with self._job(), remote_budget.patient():
            return evaluate_and_save(
                self.workspace,
                self.store,
                self.generators,
                prompts,
                model,
                baseline,
                self.judge(judge),
                settings=settings,
                force_judge=judge.force,
                prompts_source=f"prompt set {prompt_set}",
                progress=progress,
            )

    def report_names(self) -> list[str]:
        """Saved reports, newest first (none for an annotator: reports hold prompts, answers and verdicts, which
        are admin data; the tab's page-load handler answers annotators with the empty list, not an error)."""
        return [p.name for p in list_reports(self.workspace)] if access.is_admin() else []

    def report(self, name: str) -> EvalReport:
        access.require_admin("evaluation reports")
        if not name:
            raise UserError("choose a saved report")
        path = reports_dir(self.workspace) / Path(name).name
        if not path.is_file():
            raise UserError(f"report {name} is gone")
        return load_report(path)

    def agreement(self) -> pd.DataFrame:
        """Each judge's agreement with the human labels (and the humans' with each other); empty for an annotator
        (it names every annotator and judge), so the tab's timer answers them with nothing."""
        if not access.is_admin():
            return pd.DataFrame(columns=AGREEMENT_COLUMNS)
        return agreement_table(self.store, JudgeCache.for_workspace(self.workspace))

    def report_cards(self) -> pd.DataFrame:
        """Every judge measured against people: its latest report card (`judges.report_card`), newest first;
        empty for an annotator (judges and their figures are admin data), as `agreement` is."""
        if not access.is_admin():
            return pd.DataFrame(columns=list(CARD_COLUMNS))
        cache = JudgeCache.for_workspace(self.workspace)
        try:
            cards = cache.cards()
        finally:
            cache.close()
        return pd.DataFrame([{k: card.get(k) for k in CARD_COLUMNS} for card in cards], columns=list(CARD_COLUMNS))

    def judge_pairs(
        self,
        config: JudgeConfig,
        scope: str,
        *,
        min_kappa: float | None = None,
        limit: int | None = None,
        progress=None,
    ) -> tuple[BulkResult, str]:
        """Judge the store's pairs in `scope`, each verdict stored as a judge:NAME label; (result, judge name)."""
        built = self.judge(config)
        with self._job():  # judge_store itself waits over budget
            result = judge_store(
                self.store,
                built,
                cache=JudgeCache.for_workspace(self.workspace),
                scope=scope,
                min_kappa=min_kappa,
                limit=limit,
                concurrency=config.concurrency,
                progress=progress,
                force=config.force,
                cancel=self._cancel,
            )
        return result, built.source
