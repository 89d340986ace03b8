"""`RunsService`: the one door the Train tab, the CLI and the other services have onto training runs
(`Services.runs`).

Owns the rules about runs that are not a run folder's own: who may train, cancel, resume, merge and evaluate (core
`access`); a run is queued only on data that passes validation (or with the user's override); only a succeeded
run's adapter can be merged; only a finished policy run is evaluated against its base; which run a page shows when
it has none chosen; and what the live view of a run holds (`LiveRun`). Run folders and the queue are
`training.run_folder`'s and `training.run_queue`'s (the RunManager at `manager`). Knows nothing of Gradio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...core import access
from ...core.errors import UserError
from ...training.run_folder import CANCELLED, SUCCEEDED, RunFolder, RunStatus, actions
from ...training.spec import RunSpec
from .live_view import LiveRun

if TYPE_CHECKING:
    from ...core.registry import ModelRegistry
    from ...training.merge import MergeResult
    from ...training.run_queue import RunManager
    from ..evaluation import EvalReport
    from ..evaluation.service import EvaluationService

AGAINST_BASE_PROMPTS = 24  # of the shipped held-out prompts: a first answer in a few minutes on a CPU


def parse_betas(text: str | None) -> list[float]:
    try:
        return [float(b) for b in (text or "").replace(";", ",").split(",") if b.strip()]
    except ValueError:
        raise UserError(f"beta sweep values must be numbers separated by commas, got {text!r}") from None


def _name(text: str | None) -> str | None:
    return (text or "").strip() or None


def _chosen(name: str | None) -> str:
    if not name:
        raise UserError("choose a run first")
    return name


def _gate(data: str, override: bool = False, warn: Callable[[str], None] | None = None) -> None:
    """Validation errors in the data block a run unless overridden; `warn` hears about an override."""
    from ..data.checks import gate_training_data  # pandas and scipy: not for `alignstudio train --help`

    report = gate_training_data(data, override=bool(override))
    if report.has_errors and warn is not None:
        warn(f"training despite {report.counts()['error']} validation error(s)")


@dataclass
class RunsService:
    manager: RunManager  # the queue and the run folders
    registry: ModelRegistry  # a spec's base model; a merged adapter is registered here
    evaluation: EvaluationService  # the run-vs-base evaluation's judge, store, models and prompt sets

    # -- operations (admins) -------------------------------------------------------------------------------

    def _check_spec(self, spec: RunSpec, model: bool = True) -> None:
        """Who may train, and whether the spec's files may be read, before any of them is opened: its data and
        its base model (a registered name, or a folder inside the allowed ones)."""
        access.require_admin("training")
        access.check_typed_path(spec.data)
        if model:
            self.registry.resolve(spec.model)

    def start(
        self,
        spec: RunSpec,
        name: str | None = None,
        override: bool = False,
        *,
        folder: Path | None = None,
        check_model: bool = True,
        warn: Callable[[str], None] | None = None,
    ) -> str:
        """Queue one run (validation errors in its data block it unless overridden; `warn` hears of an
        override); returns its name. `folder` writes the run outside the workspace (the CLI's --out), queued for
        the caller to launch, and returns its path; `check_model=False` leaves the base model to the machine
        that launches the run (the CLI's --print-launch)."""
        self._check_spec(spec, model=check_model)
        _gate(spec.data, override, warn)
        if folder is not None:
            return str(self.manager.create(spec, folder=folder).path)
        return self.manager.start(spec, _name(name))

    def sweep(
        self, spec: RunSpec, betas: str | list[float] | None, name: str | None = None, override: bool = False
    ) -> list[str]:
        """Queue one run per beta, otherwise identical; they run one after another."""
        self._check_spec(spec)
        chosen = parse_betas(betas) if isinstance(betas, str) or betas is None else list(betas)
        _gate(spec.data, override)
        return self.manager.sweep(spec, chosen, _name(name))

    def cancel(self, name: str | None) -> bool:
        """A queued run is cancelled at once (True); a running one stops at its next step (False)."""
        access.require_admin("cancelling a run")
        return self.manager.cancel(_chosen(name)).state == CANCELLED

    def resume(self, name: str | None) -> RunStatus:
        access.require_admin("resuming a run")
        return self.manager.resume(_chosen(name))

    def merge(self, name: str | None) -> MergeResult:
        """A succeeded run's LoRA adapter merged into a full checkpoint (a registered version)."""
        from ...training.merge import merge_adapter  # loads torch: only when asked

        access.require_admin("merging a model")
        state = self.manager.status(_chosen(name)).state
        if state != SUCCEEDED:
            raise UserError(f"run {name} is {state}; only a finished run's adapter can be merged")
        return merge_adapter(self.registry, str(self.manager.folder(_chosen(name)).path))

    def evaluation_models(self, name: str | None) -> tuple[str, str]:
        """(trained, base) model names for evaluating a run against its base: a succeeded, registered policy
        run."""
        access.require_admin("evaluation")
        status = self.manager.status(_chosen(name))
        spec = self.manager.spec(_chosen(name))
        if status.state != SUCCEEDED or not status.registered_as:
            raise UserError(f"run {name} is {status.state}; only a finished run can be evaluated")
        if spec.method == "reward":
            raise UserError(
                "a reward model is a judge, not a chat model: measure it in the Evaluate tab's Judges "
                "section, or pick it as the judge here for a policy run"
            )
        card = self.manager.card(_chosen(name)) or {}
        return status.registered_as, (card.get("base_model") or {}).get("name") or spec.model

    def evaluate_against_base(
        self, name: str | None, judge_kind: str, force: bool = False, progress=None
    ) -> tuple[EvalReport, Path]:
        """A finished run's model against its base on held-out prompts, judged in both orders by the judge
        chosen (measured against people first); the report is saved where the Evaluate tab lists it."""
        from ..evaluation import EvalSettings, evaluate_and_save
        from ..judges.config import JudgeConfig

        if judge_kind == "implicit":
            raise UserError("Judge: the run's own implicit reward would be the model judging itself; pick another")
        trained, base = self.evaluation_models(name)
        evaluation = self.evaluation
        judge = evaluation.judge(JudgeConfig.from_form(judge_kind, None, None, None, None))
        prompts = evaluation.prompt_sets.load("eval")[:AGAINST_BASE_PROMPTS]
        return evaluate_and_save(
            evaluation.workspace,
            evaluation.store,
            evaluation.generators,
            prompts,
            trained,
            base,
            judge,
            settings=EvalSettings(limit=AGAINST_BASE_PROMPTS),
            force_judge=bool(force),
            prompts_source="prompt set eval",
            progress=progress,
        )

    # -- a run in the foreground (`alignstudio train`) -------------------------------------------------------

    def folder(self, key: str) -> RunFolder:
        """A run by name, or by the path `start` returned for a folder outside the workspace."""
        return self.manager.folder(key)

    def run_foreground(self, key: str, on_progress: Callable[[list[dict]], None] | None = None) -> RunStatus:
        """Launch the queued run now and wait for it, calling `on_progress(rows)` as metrics lines arrive;
        Ctrl-C asks the worker to stop at its next step and keep a checkpoint."""
        return self.manager.run_foreground(self.folder(key), on_progress=on_progress)

    # -- what the run list and the live view show ----------------------------------------------------------
    # Runs are admin data (base-model paths, held-out prompts and answers, logs). The lists are empty for an
    # annotator, so the Train tab's page-load and timer handlers answer them with nothing (and no error toast);
    # asking for one run by name is refused.

    def rows(self) -> list[list]:
        return [info.as_row() for info in self.manager.list()] if access.is_admin() else []

    def names(self) -> list[str]:
        return self.manager.names() if access.is_admin() else []

    def default_run(self, wanted: str | None) -> str | None:
        """The run to show: the one wanted (remembered by a browser, or already selected) while it exists, else
        the newest running run, else the newest run."""
        if not access.is_admin():
            return None
        infos = self.manager.list()
        names = [info.name for info in infos]
        if wanted in names:
            return wanted
        running = [info.name for info in infos if info.state == "running"]
        return running[0] if running else (names[0] if names else None)

    def allowed_actions(self, name: str | None) -> dict[str, bool]:
        """Which of cancel, resume, merge, evaluate apply to the run now (none for no run or an unknown one)."""
        state, full, reward = None, False, False
        if name and access.is_admin():
            try:
                state = self.manager.status(name).state
                spec = self.manager.spec(name)
                full, reward = bool(spec.full), spec.method == "reward"
            except UserError:
                state = None
        return actions(state, full=full, reward=reward)

    def live(self, name: str | None, log_lines: int = 60) -> LiveRun | None:
        """The live view's data for one run (None for no run); UserError for an unknown one."""
        if not name:
            return None
        access.require_admin("a training run's view")
        return LiveRun.read(self.manager, name, log_lines)

    def metrics_by_run(self, names: list[str] | None) -> list[tuple[str, float | None, list[dict]]]:
        """(name, beta or None for a reward run, training metrics) for each run that exists, e.g. a beta
        sweep."""
        if names:
            access.require_admin("a training run's metrics")
        out = []
        for name in names or []:
            try:
                spec = self.manager.spec(name)  # a reward model has no beta
                out.append((name, None if spec.method == "reward" else spec.beta, self.manager.metrics(name)))
            except UserError:
                continue
        return out
