"""Capability checks: lm-evaluation-harness tasks scored on a trained model and on its base, side by side.

The DPO guide: always compare pre- and post-alignment benchmark scores; a drop above 5% means the training was too
aggressive (try a higher beta, a lower learning rate, fewer steps). Each task's metrics are reported for both
models with the delta and its standard error (paired over the same questions), and a drop of more than 5 points
of a score (0.62 -> 0.56) is named in the verdict.

Tasks are lm-eval task names (the harness's own tasks need the network for their data) or local task folders
(YAML + data files in lm-eval's task format). The shipped `data/capabilities/` task (20 everyday multiple-choice
questions written for this project) is always known by its name, `alignstudio_basics`, and runs offline.
lm-eval is optional for the app: without it the check says how to install it (`LM_EVAL_INSTALL`).

A trained run's model is loaded the way sampling loads it (the registry; a LoRA adapter merged into its base) and
handed to lm-eval's `HFLM`. The result goes into the run folder (`capabilities.json`) and the run card, which the
Train tab and the model card show. `start` runs the check in a background thread of the app; the CLI calls `check`.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...core import access
from ...core.errors import UserError
from ...core.locking import exclusive
from ...core.settings import check_bounds, from_values, setting
from ...core.settings import settings as fields_of
from ...training.model_card import capability_lines, record_capabilities
from .lm_harness import TASKS_FIELD, compare, score, task_specs
from .lm_harness import TASKS_FOLDER as TASKS_FOLDER  # the shipped task, for callers
from .lm_harness import CapabilityScore as CapabilityScore  # a report's rows

LM_EVAL_INSTALL = "pip install lm-eval==0.4.13"
DEFAULT_TASKS = "alignstudio_basics"
RESULT_FILE = "capabilities.json"
RUNNING, DONE, FAILED, INTERRUPTED = "running", "done", "failed", "interrupted"


@dataclass(frozen=True)
class CapabilitySettings:
    """What a capability check runs; the CLI flags and the Train tab's controls are built from these fields."""

    tasks: str = setting(
        DEFAULT_TASKS,
        "lm-eval task names or local task folders, comma-separated (alignstudio_basics: the shipped offline task)",
        label=TASKS_FIELD,
    )
    limit: int | None = setting(
        None, "questions per task at most (empty = all)", label="Questions per task", minimum=1, maximum=100_000
    )
    batch_size: int = setting(8, "lm-eval batch size", label="Batch size", minimum=1, maximum=512)

    def __post_init__(self):
        check_bounds(self, "limit", "batch_size")
        if not task_list(self.tasks):
            raise UserError(f"{TASKS_FIELD}: name at least one lm-eval task or task folder")


@dataclass
class CapabilityReport:
    model: str
    baseline: str
    tasks: str
    state: str = RUNNING
    scores: list[CapabilityScore] = field(default_factory=list)
    stage: str = ""  # what a running check is doing
    error: str = ""
    limit: int | None = None
    started: float = field(default_factory=time.time)
    seconds: float | None = None
    pid: int = field(default_factory=os.getpid)
    lm_eval_version: str = ""

    @property
    def drops(self) -> list[CapabilityScore]:
        return [s for s in self.scores if s.dropped]

    @property
    def verdict(self) -> str:
        if self.state != DONE:
            return ""
        if not self.scores:
            return "No scores: the tasks reported no metric for both models."
        if self.drops:
            named = "; ".join(
                f"{s.task} {s.metric} {s.base:.3f} -> {s.trained:.3f} ({s.change}, "
                + ("beyond 2 standard errors)" if s.beyond_noise else "within 2 standard errors: maybe noise)")
                for s in self.drops
            )
            return (
                f"Capability drop beyond the DPO guide's 5% threshold: {named}. The training may be too "
                "aggressive: try a higher beta, a lower learning rate or fewer steps."
            )
        worst = max(self.scores, key=lambda s: s.relative_drop)
        return (
            f"No drop beyond the DPO guide's 5% threshold (largest change: {worst.task} {worst.metric} {worst.change})."
        )

    def to_dict(self) -> dict:
        out = asdict(self) | {"verdict": self.verdict}
        out["scores"] = [s.to_dict() for s in self.scores]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CapabilityReport:
        keep = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in keep}
        score_fields = set(CapabilityScore.__dataclass_fields__)
        values["scores"] = [
            CapabilityScore(**{k: v for k, v in s.items() if k in score_fields}) for s in data.get("scores") or []
        ]
        return cls(**values)


def form_settings() -> dict:
    """The check's settings (label, help, range), from which the Train tab builds its controls."""
    return fields_of(CapabilitySettings)


def settings_from_form(values: dict) -> CapabilitySettings:
    """What the Train tab's controls hold, as validated settings (empty means the default); an error names the
    control by its label ("Questions per task: ..."), not by the field."""
    try:
        return from_values(CapabilitySettings, values, "capability check")
    except UserError as exc:
        named = next((s for s in form_settings().values() if str(exc).startswith(f"{s.name} ")), None)
        if named is None:
            raise
        raise UserError(f"{named.title}: {str(exc).removeprefix(named.name + ' ')}") from None


def available() -> bool:
    """Whether lm-evaluation-harness can be imported."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        return False
    return True


def require_lm_eval() -> None:
    if not available():
        raise UserError(f"capability checks need lm-evaluation-harness: {LM_EVAL_INSTALL}")


def task_list(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def markdown(report: CapabilityReport | None) -> str:
    """The check as the Train tab and the CLI show it."""
    if report is None:
        return ""
    if report.state == RUNNING:
        return f"Capability check running ({report.tasks}): {report.stage or 'starting'}."
    if report.state == INTERRUPTED:
        return f"The capability check ({report.tasks}) was interrupted (the app stopped); run it again."
    if report.state == FAILED:
        return f"**Capability check failed:** {report.error}"
    return "\n".join(capability_lines(report.to_dict()))


# -- which model, which tasks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    trained: str
    base: str
    run_dir: Path | None  # where the result is kept (a training run's folder), if the model is a run's


def plan(services, model: str, baseline: str | None = None) -> Plan:
    """The trained model and its base: a finished policy run (by run name or its registered name) knows its
    base; any other model needs `baseline`."""
    model = (model or "").strip()
    if not model:
        raise UserError("Model: name a finished run or a model")
    runs = services.runs.names()
    run = model if model in runs else None
    for version in services.store.model_versions():  # a run's registered name stands for the run
        if run is None and version["name"] == model and version.get("run_dir"):
            run = Path(version["run_dir"]).name if Path(version["run_dir"]).name in runs else None
    if run is not None:
        trained, base = services.runs.evaluation_models(run)
        return Plan(trained, (baseline or "").strip() or base, services.runs.folder(run).path)
    if not (baseline or "").strip():
        raise UserError(f"Baseline: {model!r} is not a training run, so name the model to compare it with")
    return Plan(model, baseline.strip(), None)


def check(services, model: str, settings: CapabilitySettings, baseline: str | None = None, progress=None):
    """Score the tasks on the base and the trained model, compare, and keep the report with the run (if the
    model is a run's). Returns (CapabilityReport, Plan)."""
    access.require_admin("capability checks")
    require_lm_eval()
    chosen = plan(services, model, baseline)
    tasks = task_specs(task_list(settings.tasks))  # bad task names are refused before anything is written
    return _run(services, chosen, settings, tasks, progress), chosen


def _run(services, chosen: Plan, settings: CapabilitySettings, tasks: tuple, progress=None) -> CapabilityReport:
    """`tasks`: lm-eval's task specs and TaskManager (`lm_harness.task_specs`)."""
    import lm_eval

    report = CapabilityReport(chosen.trained, chosen.base, settings.tasks, limit=settings.limit)
    report.lm_eval_version = getattr(lm_eval, "__version__", "")

    def stage(text: str, fraction: float) -> None:
        report.stage = text
        if chosen.run_dir is not None:
            _write(chosen.run_dir, report)
        if progress:
            progress(fraction, text)

    specs, manager = tasks
    stage(f"scoring the base model {chosen.base} (1 of 2)", 0.05)
    base = score(services.registry, chosen.base, specs, manager, settings.limit, settings.batch_size)
    stage(f"scoring the trained model {chosen.trained} (2 of 2)", 0.5)
    trained = score(services.registry, chosen.trained, specs, manager, settings.limit, settings.batch_size)
    report.scores = compare(base, trained)
    report.state, report.stage, report.seconds = DONE, "", time.time() - report.started
    if chosen.run_dir is not None:
        _write(chosen.run_dir, report)
        record_capabilities(chosen.run_dir, report.to_dict())
    if progress:
        progress(1.0, "done")
    return report


# -- in the background, for the Train tab ------------------------------------------------------------------


def _write(run_dir: Path, report: CapabilityReport) -> None:
    save(report, run_dir / RESULT_FILE)


def save(report: CapabilityReport, path: Path) -> Path:
    """The report as JSON at `path` (the CLI's --out), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(run_dir: Path) -> CapabilityReport | None:
    try:
        report = CapabilityReport.from_dict(json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
    if report.state == RUNNING and not _alive(report.pid):
        report.state = INTERRUPTED
    return report


def latest(services, run: str | None) -> CapabilityReport | None:
    """A run's latest capability check (running, done, failed or interrupted), or None."""
    if not run or not access.is_admin() or run not in services.runs.names():
        return None
    return _read(services.runs.folder(run).path)


def start(services, run: str, settings: CapabilitySettings) -> str:
    """The Train tab's button: check a finished run in a background thread of the app (one check per run at a
    time); its progress and result land in the run folder, which the tab polls."""
    access.require_admin("capability checks")
    require_lm_eval()
    if not run or run not in services.runs.names():
        raise UserError(f"Run: choose a finished run{f' (there is no run {run!r})' if run else ''}")
    chosen = plan(services, run)
    tasks = task_specs(task_list(settings.tasks))
    with exclusive(chosen.run_dir / ".capabilities.lock"):
        current = _read(chosen.run_dir)
        if current is not None and current.state == RUNNING:
            raise UserError(f"a capability check of {run} is already running ({current.stage})")
        _write(chosen.run_dir, CapabilityReport(chosen.trained, chosen.base, settings.tasks, limit=settings.limit))

    def work() -> None:
        try:
            _run(services, chosen, settings, tasks)
        except Exception as exc:  # the thread's one report: the run folder, which the tab shows
            failed = CapabilityReport(chosen.trained, chosen.base, settings.tasks, state=FAILED, limit=settings.limit)
            failed.error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            _write(chosen.run_dir, failed)

    context = contextvars.copy_context()  # the thread acts as the caller (path checks, admin rights)
    threading.Thread(target=context.run, args=(work,), name=f"capabilities-{run}", daemon=True).start()
    return f"Capability check of **{run}** against `{chosen.base}` started ({settings.tasks})."
