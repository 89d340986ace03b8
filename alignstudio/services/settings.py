"""Settings fields: one dataclass field holds a setting's default, bounds, label and help.

`setting(...)` declares a field of an operation's settings dataclass (sampling, evaluation, a judge); the CLI
builds its flags and the app its controls from `spec(cls, name)`, so a default or a bound is written once.
This module knows nothing of argparse or Gradio.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from ..core.errors import UserError


def setting(default: Any = None, *, help: str = "", label: str = "", minimum: float | None = None,
            maximum: float | None = None, step: float | None = None, form_default: Any = dataclasses.MISSING,
            repr: bool = True) -> Any:
    """A dataclass field with its description. `form_default` is what the app's form starts with when it
    differs from the default (e.g. 20 prompts in the Evaluate tab where the CLI's default is all)."""
    meta = {"help": help, "label": label, "minimum": minimum, "maximum": maximum, "step": step}
    if form_default is not dataclasses.MISSING:
        meta["form_default"] = form_default
    return dataclasses.field(default=default, metadata=meta, repr=repr)


@dataclass(frozen=True)
class Spec:
    """What a flag or a control needs to know about one setting."""

    name: str
    type: type            # int, float, str or bool (an optional int is int)
    optional: bool        # None is allowed (empty = the default behaviour)
    default: Any
    help: str
    label: str
    minimum: float | None
    maximum: float | None
    step: float | None
    form_default: Any

    def check(self, value) -> None:
        """UserError unless `value` lies within the bounds (None passes where it is allowed)."""
        if value is None and self.optional:
            return
        low = -float("inf") if self.minimum is None else self.minimum
        high = float("inf") if self.maximum is None else self.maximum
        if not low <= value <= high:
            if self.minimum is not None and self.maximum is not None:
                raise UserError(f"{self.name} must be between {self.minimum} and {self.maximum}, got {value}")
            bound = f"at least {self.minimum}" if self.maximum is None else f"at most {self.maximum}"
            raise UserError(f"{self.name} must be {bound}, got {value}")


def spec(cls, name: str) -> Spec:
    """The description of `cls.name` (a field declared with `setting`)."""
    found = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if found is None:
        raise KeyError(f"{cls.__name__} has no setting {name}")
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = bool(typing.get_args(hint)) and type(None) in typing.get_args(hint)
    kind = args[0] if optional and args else hint
    meta = found.metadata
    return Spec(name, kind, optional, found.default, meta.get("help", ""), meta.get("label", "") or name,
                meta.get("minimum"), meta.get("maximum"), meta.get("step"), meta.get("form_default", found.default))


def check_bounds(settings, *names: str) -> None:
    """Check the named fields of a settings object against their declared bounds."""
    for name in names:
        spec(type(settings), name).check(getattr(settings, name))
