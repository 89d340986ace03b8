"""The training service: what the Train tab, the CLI and other services know of training runs.

- runs.py: `RunsService`, the container's `services.runs`: start, sweep, cancel, resume, merge and evaluate runs,
  and what the run list and the live view show. Every operation on a run goes through it.
- live_view.py: `LiveRun`, one run as the live view shows it (typed: no card dicts or state strings in a tab).
- here: the settings a form offers, from `RunSpec` (`form_settings`, `method_form`, `spec_from_form`).
- command.py (the equivalent `alignstudio train` line), foreground.py (`alignstudio train`'s data check and
  multi-GPU launch line), model_export.py (`alignstudio export-model`).
Knows nothing of Gradio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core import access
from ...core.errors import UserError
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
from .command import command_line  # noqa: F401  (the Train tab's command preview)
from .live_view import REWARD_USABLE, BeforeAfter, LiveRun, ScheduleUsed  # noqa: F401  (what a tab renders)
from .runs import AGAINST_BASE_PROMPTS, RunsService, parse_betas  # noqa: F401  (the door onto runs)

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
