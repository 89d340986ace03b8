"""The training service: the door the Train tab (and the HTTP API behind it) has onto training runs.

Owns the rules about runs that are not a run folder's own: a run is queued only on data that passes
validation (or with the user's override); only a succeeded run's adapter can be merged; only a finished policy
run is evaluated against its base; which run a page shows when it has none chosen; and what the live view of a
run holds (status, metrics, verdict, diagnostics), so a tab only renders it. The settings a form offers come
from `RunSpec` (`settings`, `method_form`, `spec_from_form`). Knows nothing of Gradio; run folders and the
queue are `training.run_folder` and `training.run_queue`'s (the RunManager at `services.runs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ...core import access
from ...core.errors import UserError
from ...training.diagnostics import diagnose_spec, expected_first_loss
from ...training.reward import HeldoutReport
from ...training.run_folder import CANCELLED, FINISHED, RUNNING, SUCCEEDED, RunStatus, actions
from ...training.spec import (
    DEFAULT_LOSS,
    DPO_LOSS_TYPES,
    KTO_LOSS_TYPES,
    METHOD_ALIASES,
    METHODS,
    SWEEP_BETAS,
    RunSpec,
    Setting,
    settings,
)
from ...training.spec import (
    MAIN as MAIN,
)
from ...training.spec import (
    MORE as MORE,
)
from ...training.verdict import LEARNED, Verdict, judge_spec
from .command import command_line  # noqa: F401  (the Train tab's command preview)

SWEEP_TEXT = ", ".join(f"{beta:g}" for beta in SWEEP_BETAS)  # the sweep box's default
LOSS_PICKER_METHODS = ("dpo", "kto")  # the methods whose loss type a person picks
METHOD_NAMES = (*METHODS, *METHOD_ALIASES)  # every method a person may name (ipo: dpo with the ipo loss)


def form_settings() -> dict[str, Setting]:
    """Every run setting with its default, label, help, range and choices, and where it is exposed (`cli`: its
    `alignstudio train` flag's heading; `ui`: its Train tab section, MAIN or MORE)."""
    return settings()


@dataclass(frozen=True)
class MethodForm:
    """What the form shows for a method: its loss types, the one chosen, and its default beta."""

    loss_choices: list[str]
    loss: list[str]
    loss_editable: bool
    beta: float


def method_form(method: str) -> MethodForm:
    choices = list(DPO_LOSS_TYPES) if method in ("dpo", "ipo") else list(KTO_LOSS_TYPES) if method == "kto" else []
    loss = (
        list(METHOD_ALIASES[method][1])
        if method in METHOD_ALIASES
        else list(DEFAULT_LOSS[method])
        if method in LOSS_PICKER_METHODS
        else []
    )
    return MethodForm(choices, loss, method in LOSS_PICKER_METHODS, RunSpec.default("beta", method))


def spec_from_form(values: Mapping[str, Any]) -> RunSpec:
    """A form's values (RunSpec field names, plus `data_kind` with `snapshot` or `data_file` for the data) as a
    validated spec; UserError names the bad field. The caller's role and the path policy come before the file
    system is looked at, so the answer tells nobody whether a file exists unless they may read it."""
    access.require_admin("training")
    values = dict(values)
    kind = values.pop("data_kind", "file")
    snapshot, data_file = values.pop("snapshot", None), values.pop("data_file", None)
    data = (snapshot if kind == "snapshot" else (data_file or "").strip()) or ""
    if not data:
        raise UserError(
            "choose a snapshot (make one in the Data tab) or enter a data file"
            if kind == "snapshot"
            else "enter the path of a training data file"
        )
    path = Path(data).expanduser()
    access.check_typed_path(path)
    if not path.exists():
        raise UserError(f"training data {data} does not exist")
    if values.get("method") not in LOSS_PICKER_METHODS:
        values["loss_type"] = None  # the picker is off: ORPO/SimPO have one loss, ipo names its own
    return RunSpec.from_values(values | {"data": str(path.resolve())})


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


# -- operations -----------------------------------------------------------------------------------------


def _check_spec(services, spec: RunSpec, model: bool = True) -> None:
    """Who may train, and whether the spec's files may be read, before any of them is opened: its data and its
    base model (a registered name, or a folder inside the allowed ones)."""
    access.require_admin("training")
    access.check_typed_path(spec.data)
    if model:
        services.registry.resolve(spec.model)


def _gate(data, override: bool = False, warn=None):
    """Validation errors in the data block a run unless overridden; `warn` hears about an override."""
    from ..data.checks import gate_training_data  # pandas and scipy: not for `alignstudio train --help`

    report = gate_training_data(data, override=bool(override))
    if report.has_errors and warn is not None:
        warn(f"training despite {report.counts()['error']} validation error(s)")
    return report


def start(
    services,
    spec: RunSpec,
    name: str | None = None,
    override: bool = False,
    *,
    folder: Path | None = None,
    check_model: bool = True,
    warn=None,
) -> str:
    """Queue one run (validation errors in its data block it unless overridden; `warn` hears of an override);
    returns its name. `folder` writes the run outside the workspace (the CLI's --out), queued for the caller to
    launch, and returns its path; `check_model=False` leaves the base model to the machine that launches the
    run (the CLI's --print-launch)."""
    _check_spec(services, spec, model=check_model)
    _gate(spec.data, override, warn)
    if folder is not None:
        return str(services.runs.create(spec, folder=folder).path)
    return services.runs.start(spec, _name(name))


def sweep(
    services, spec: RunSpec, betas: str | list[float], name: str | None = None, override: bool = False
) -> list[str]:
    """Queue one run per beta, otherwise identical; they run one after another."""
    _check_spec(services, spec)
    betas = parse_betas(betas) if isinstance(betas, str) or betas is None else list(betas)
    _gate(spec.data, override)
    return services.runs.sweep(spec, betas, _name(name))


def cancel(services, name: str) -> bool:
    """A queued run is cancelled at once (True); a running one stops at its next step (False)."""
    access.require_admin("cancelling a run")
    return services.runs.cancel(_chosen(name)).state == CANCELLED


def resume(services, name: str) -> RunStatus:
    access.require_admin("resuming a run")
    return services.runs.resume(_chosen(name))


def merge(services, name: str):
    """A succeeded run's LoRA adapter merged into a full checkpoint (a registered version)."""
    from ...training.merge import merge_adapter  # loads torch: only when asked

    access.require_admin("merging a model")
    state = services.runs.status(_chosen(name)).state
    if state != SUCCEEDED:
        raise UserError(f"run {name} is {state}; only a finished run's adapter can be merged")
    return merge_adapter(services.registry, str(services.runs.folder(name).path))


def evaluation_models(services, name: str) -> tuple[str, str]:
    """(trained, base) model names for evaluating a run against its base: a succeeded, registered policy run."""
    access.require_admin("evaluation")
    status = services.runs.status(_chosen(name))
    spec = services.runs.spec(name)
    if status.state != SUCCEEDED or not status.registered_as:
        raise UserError(f"run {name} is {status.state}; only a finished run can be evaluated")
    if spec.method == "reward":
        raise UserError(
            "a reward model is a judge, not a chat model: measure it in the Evaluate tab's Judges "
            "section, or pick it as the judge here for a policy run"
        )
    card = services.runs.card(name) or {}
    return status.registered_as, (card.get("base_model") or {}).get("name") or spec.model


AGAINST_BASE_PROMPTS = 24  # of the shipped held-out prompts: a first answer in a few minutes on a CPU


def evaluate_against_base(services, name: str, judge_kind: str, force: bool = False, progress=None):
    """A finished run's model against its base on held-out prompts, judged in both orders by the judge chosen
    (measured against people first); the report is saved where the Evaluate tab lists it. Returns
    (EvalReport, path)."""
    from ..evaluation import EvalSettings, evaluate_and_save
    from ..judges.config import JudgeConfig

    if judge_kind == "implicit":
        raise UserError("Judge: the run's own implicit reward would be the model judging itself; pick another")
    trained, base = evaluation_models(services, name)
    judge = services.evaluation.judge(JudgeConfig.from_form(judge_kind, None, None, None, None))
    prompts = services.prompt_sets.load("eval")[:AGAINST_BASE_PROMPTS]
    return evaluate_and_save(
        services.workspace,
        services.store,
        services.generators,
        prompts,
        trained,
        base,
        judge,
        settings=EvalSettings(limit=AGAINST_BASE_PROMPTS),
        force_judge=bool(force),
        prompts_source="prompt set eval",
        progress=progress,
    )


# -- what the run list and the live view show ------------------------------------------------------------


# Runs are admin data (base-model paths, held-out prompts and answers, logs). The lists are empty for an
# annotator, so the Train tab's page-load and timer handlers answer them with nothing (and no error toast);
# asking for one run by name is refused.


def run_rows(services) -> list[list]:
    return [info.as_row() for info in services.runs.list()] if access.is_admin() else []


def run_names(services) -> list[str]:
    return services.runs.names() if access.is_admin() else []


def default_run(services, wanted: str | None) -> str | None:
    """The run to show: the one wanted (remembered by a browser, or already selected) while it exists, else
    the newest running run, else the newest run."""
    if not access.is_admin():
        return None
    infos = services.runs.list()
    names = [info.name for info in infos]
    if wanted in names:
        return wanted
    running = [info.name for info in infos if info.state == "running"]
    return running[0] if running else (names[0] if names else None)


def allowed_actions(services, name: str | None) -> dict[str, bool]:
    """Which of cancel, resume, merge, evaluate apply to the run now (none for no run or an unknown one)."""
    state, full, reward = None, False, False
    if name and access.is_admin():
        try:
            state = services.runs.status(name).state
            spec = services.runs.spec(name)
            full, reward = bool(spec.full), spec.method == "reward"
        except UserError:
            state = None
    return actions(state, full=full, reward=reward)


REWARD_USABLE = 0.6  # a reward model's held-out pairwise accuracy from which it is offered as a judge


@dataclass(frozen=True)
class ScheduleUsed:
    """The schedule a run trained with (chosen from the data unless set), from its card."""

    learning_rate: float
    batch_size: int
    epochs: float
    warmup_steps: int


@dataclass(frozen=True)
class BeforeAfter:
    """A held-out prompt answered by the base and by the trained model (same seed)."""

    prompt: str
    base: str
    trained: str


@dataclass
class LiveRun:
    """One run as the live view shows it: typed, so a tab never reads a run card or a state string."""

    name: str
    status: RunStatus
    spec: RunSpec
    rows: list[dict]  # training and held-out metrics lines
    log: str  # the log's last lines
    expected_start: float | None  # the loss of a policy equal to its reference (ln 2 for sigmoid DPO)
    findings: list = field(default_factory=list)  # diagnostics of the metrics so far
    verdict: Verdict | None = None  # a succeeded run's verdict (a reward run's from its card)
    schedule: ScheduleUsed | None = None
    heldout_note: str = ""  # how the labels were split into training and held-out pairs
    before_after: list[BeforeAfter] = field(default_factory=list)
    reward_result: HeldoutReport | None = None  # a finished reward run's held-out measures

    @property
    def reward(self) -> bool:
        return self.spec.method == "reward"

    @property
    def running(self) -> bool:
        return self.status.state == RUNNING

    @property
    def succeeded(self) -> bool:
        return self.status.state == SUCCEEDED

    @property
    def learned(self) -> bool:
        return self.verdict is not None and self.verdict.code == LEARNED

    @property
    def reward_usable(self) -> bool:
        """A reward model whose held-out accuracy is beyond chance at its count (its verdict), or, for a card
        from before reward verdicts, at least REWARD_USABLE."""
        if self.reward and self.verdict is not None:
            return self.verdict.code == LEARNED
        return self.reward_result is not None and (self.reward_result.accuracy or 0.0) >= REWARD_USABLE


def _from_card(view: LiveRun, card: dict) -> None:
    """The card's parts the live view shows, as typed fields."""
    schedule = card.get("schedule")
    if schedule:
        view.schedule = ScheduleUsed(
            schedule["learning_rate"], schedule["batch_size"], schedule["num_train_epochs"], schedule["warmup_steps"]
        )
    view.heldout_note = ((card.get("dataset") or {}).get("heldout") or {}).get("note", "")
    view.before_after = [BeforeAfter(r["prompt"], r["base"], r["trained"]) for r in card.get("before_after") or []]
    reward = card.get("reward") or {}
    if "accuracy" in reward or "note" in reward:
        view.reward_result = HeldoutReport(**{f.name: reward.get(f.name) for f in fields(HeldoutReport)})


_VERDICT_FIELDS = {f.name for f in fields(Verdict)}


def live(services, name: str | None, log_lines: int = 60) -> LiveRun | None:
    """The live view's data for one run (None for no run); UserError for an unknown one."""
    if not name:
        return None
    access.require_admin("a training run's view")
    runs = services.runs
    status, spec = runs.status(name), runs.spec(name)
    rows = runs.all_metrics(name)
    card = (runs.card(name) or {}) if status.state in FINISHED else {}
    view = LiveRun(
        name,
        status,
        spec,
        rows,
        runs.log_tail(name, log_lines),
        expected_first_loss(spec.method, spec.loss_type, spec.beta, spec.label_smoothing),
    )
    _from_card(view, card)
    if rows:
        view.findings = diagnose_spec(rows, spec)
        verdict = card.get("verdict") if status.state == SUCCEEDED else None
        if verdict:  # fields a newer card has and this code does not know are left out
            view.verdict = Verdict(**{k: v for k, v in verdict.items() if k in _VERDICT_FIELDS})
        elif status.state == SUCCEEDED and not view.reward:
            view.verdict = judge_spec(rows, spec)
    return view


def metrics_by_run(services, names: list[str] | None) -> list[tuple[str, float | None, list[dict]]]:
    """(name, beta or None for a reward run, training metrics) for each run that exists, e.g. a beta sweep."""
    if names:
        access.require_admin("a training run's metrics")
    out = []
    for name in names or []:
        try:
            spec = services.runs.spec(name)  # a reward model has no beta
            out.append((name, None if spec.method == "reward" else spec.beta, services.runs.metrics(name)))
        except UserError:
            continue
    return out
