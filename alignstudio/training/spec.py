"""What a training run is asked to do: the `RunSpec` dataclass, validated on creation, saved as spec.json.

Its fields, with their defaults, help, form labels, ranges and where the CLI and the Train tab expose them, are
`spec_fields.RunSettings`'; the rules a spec is checked against (the loss types each method accepts, the
numbers) are `spec_rules`'. This module owns the method aliases (`ipo` is DPO with loss_type ipo), the checks on
creation, the derived facts (reference model, drift budget), and the JSON round-trip. The CLI's flags and the
tab's controls are built from `settings()` in one loop each, and both turn what was typed into a spec with one
translation (`RunSpec.from_values`). It imports nothing heavy (no torch, no TRL): the UI and the runner read
specs without loading a model.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.settings import Setting, from_values
from ..core.settings import settings as settings_of
from .spec_fields import HELDOUT as HELDOUT
from .spec_fields import MAIN as MAIN
from .spec_fields import METHOD_ALIASES as METHOD_ALIASES
from .spec_fields import METHODS as METHODS
from .spec_fields import MORE as MORE
from .spec_fields import OWN as OWN
from .spec_fields import PRECISIONS as PRECISIONS
from .spec_fields import REFERENCE_METHODS as REFERENCE_METHODS
from .spec_fields import SCHEDULERS as SCHEDULERS
from .spec_fields import SWEEP_BETAS as SWEEP_BETAS
from .spec_fields import TRAINING as TRAINING
from .spec_fields import RunSettings
from .spec_rules import DEFAULT_LOSS as DEFAULT_LOSS
from .spec_rules import DPO_LOSS_TYPES as DPO_LOSS_TYPES
from .spec_rules import KTO_LOSS_TYPES as KTO_LOSS_TYPES
from .spec_rules import check_loss, check_numbers


@dataclass
class RunSpec(RunSettings):
    """One training run (its fields: `spec_fields.RunSettings`). Invalid values raise `UserError` naming the field."""

    def __post_init__(self) -> None:
        self.method = str(self.method or "").strip().lower()
        if self.method in METHOD_ALIASES:
            method, loss = METHOD_ALIASES[self.method]
            if self.loss_type and list(self.loss_type) != loss:
                raise UserError(
                    f"method {self.method!r} means DPO with loss_type {loss}; "
                    f"use method 'dpo' for loss_type {self.loss_type}"
                )
            self.method, self.loss_type = method, list(loss)
        if self.method not in METHODS:
            raise UserError(f"method must be one of {', '.join(METHODS + tuple(METHOD_ALIASES))}, not {self.method!r}")
        check_loss(self)
        check_numbers(self)
        if not str(self.model or "").strip():
            raise UserError("model: no base model given")
        if not str(self.data or "").strip():
            raise UserError("data: no training data given (a file or a snapshot folder)")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.lr_scheduler not in SCHEDULERS:
            raise UserError(f"lr_scheduler must be one of {', '.join(SCHEDULERS)}, not {self.lr_scheduler!r}")
        if self.lora_target_modules is not None:
            if isinstance(self.lora_target_modules, str):
                self.lora_target_modules = [m.strip() for m in self.lora_target_modules.split(",") if m.strip()]
            self.lora_target_modules = list(self.lora_target_modules) or None
        if self.register_as is not None and not str(self.register_as).strip():
            self.register_as = None

    # -- derived -----------------------------------------------------------------------------------
    @property
    def uses_reference(self) -> bool:
        return self.method in REFERENCE_METHODS

    @property
    def drift_fraction(self) -> float | None:
        """The drift budget as a fraction (0.03 = 3%), None where off; a reward model does not generate, so none."""
        return self.drift_budget / 100 if self.drift_budget and self.method != "reward" else None

    @property
    def label(self) -> str:
        """Short description for lists: 'dpo[sigmoid] beta=0.1 lora'."""
        loss = "" if self.method in ("orpo", "simpo", "reward") else f"[{'+'.join(self.loss_type)}]"
        beta = "" if self.method == "reward" else f" beta={self.beta:g}"  # a reward model has no beta
        return f"{self.method}{loss}{beta} {'full' if self.full else 'lora'}"

    # -- JSON ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunSpec":
        if not isinstance(data, dict):
            raise UserError(f"a run spec must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown run setting(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"run spec is not valid JSON ({exc.msg})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "RunSpec":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path} does not exist")
        return cls.from_json(path.read_text(encoding="utf-8"))

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)

    @classmethod
    def help(cls, name: str) -> str:
        return settings()[name].help

    @classmethod
    def default(cls, name: str, method: str | None = None) -> Any:
        """A field's default, or its default for `method` where that differs (SimPO's beta)."""
        return settings()[name].default_for(method)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "RunSpec":
        """What a person typed (a form, the command line) as a validated spec. Empty (None, '', 'auto' for a
        field that may be empty) means the field's default, except for required text such as the model, which
        the spec then refuses; numbers may come as text; list fields take comma-separated text; a field marked
        `zero_is_empty` reads 0 as empty (what an API client sends for an empty box)."""
        return from_values(cls, dict(values), noun="run")


def settings() -> dict[str, Setting]:
    """{field name: Setting} for every RunSpec field, in declaration order."""
    return settings_of(RunSpec)


def field_help() -> dict[str, str]:
    """{field name: help} for every RunSpec field, in declaration order."""
    return {name: s.help for name, s in settings().items()}
