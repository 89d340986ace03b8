"""Settings fields: one dataclass field holds a setting's default, help, form label, offered range and choices.

Every operation's settings dataclass (a training run's `RunSpec`, `SamplingSettings`, `EvalSettings`, a judge's
`JudgeConfig`) declares its fields with `setting(...)`. The CLI builds its flags and the app its controls from
`settings(cls)`, and both turn what was typed into values with `Setting.parse`, so a default, a bound or a help
text is written once. Knows nothing of argparse or Gradio.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import UserError

EMPTY = object()  # Setting.parse: nothing was given, the field's default applies
TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def setting(default: Any = None, help: str = "", *, repr: bool = True, **describe) -> Any:
    """A dataclass field with its description (see `Setting` for the keys of `describe`). A list or dict
    default is copied for each instance."""
    meta = {"help": help, **describe}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: _copy(default), metadata=meta, repr=repr)
    return dataclasses.field(default=default, metadata=meta, repr=repr)


def _copy(value):
    return (
        {k: _copy(v) for k, v in value.items()}
        if isinstance(value, dict)
        else [_copy(v) for v in value]
        if isinstance(value, list)
        else value
    )


@dataclass(frozen=True)
class Setting:
    """One field as a CLI flag or a form control shows it."""

    name: str
    kind: str  # str, int, float, bool, list[str] or list[float]
    optional: bool  # may be None (empty = chosen from the data, or the method's default)
    default: Any
    help: str
    label: str | None = None  # the form's label; None where no form shows the field
    info: str | None = None  # a short hint under the form control
    empty: str | None = None  # what an empty box means (the placeholder of an optional number)
    minimum: float | None = None  # the range offered (and checked by `check`)
    maximum: float | None = None
    step: float | None = None
    choices: tuple | None = None
    per_method: dict | None = None  # {method: default} where a training method wants another default
    zero_is_empty: bool = False  # a 0 from a form means "empty" (what an API client sends for an empty box)
    form_default: Any = EMPTY  # what a form starts with where it differs from the default
    # where the field is exposed (read by the command that offers it and by its tab):
    cli: str | None = None  # the --help heading its flag is listed under ("" = the command's own); None = no flag
    alias: str | None = None  # a second, older flag name (e.g. --epochs) besides `flag`
    ui: str | None = None  # the form section its control sits in ("main", "more"); None = no control
    control_id: str | None = None  # the control's id after the tab's prefix, where not the name with dashes
    row: str | None = None  # neighbours in one section with the same row share a line of the form

    @property
    def type(self) -> type | None:
        return TYPES.get(self.kind)

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def flags(self) -> tuple[str, ...]:
        """The flag, then its alias where it has one."""
        return (self.flag, self.alias) if self.alias else (self.flag,)

    def control(self, prefix: str) -> str:
        """The form control's elem_id under the tab's `prefix`."""
        return f"{prefix}-{self.control_id or self.name.replace('_', '-')}"

    @property
    def start(self) -> Any:
        """The value a form starts with."""
        return self.default if self.form_default is EMPTY else self.form_default

    def default_for(self, method: str | None = None) -> Any:
        return (self.per_method or {}).get(method, self.default)

    def parse(self, value: Any) -> Any:
        """A loose value (text from a box, a number, a list) as this field's value, or EMPTY."""
        if isinstance(value, str):
            value = value.strip()
        if self.kind == "str" and not self.optional and value in (None, ""):
            return ""  # a required text left empty is the dataclass's error (e.g. "no base model"), not a default
        if value is None or value == "" or (self.optional and value == "auto"):
            return EMPTY
        if self.kind.startswith("list["):
            items = [x.strip() for x in value.split(",") if x.strip()] if isinstance(value, str) else list(value)
            return [self._number(x, "comma-separated numbers") for x in items] if self.kind == "list[float]" else items
        if self.kind in ("int", "float") and isinstance(value, str):
            value = self._number(value, "a number or empty")
        if self.kind == "int" and isinstance(value, float):  # form number boxes send 2.0 for 2
            if not value.is_integer():
                raise UserError(f"{self.name} must be a whole number, got {value!r}")
            value = int(value)
        if self.zero_is_empty and value == 0:
            return EMPTY
        return bool(value) if self.kind == "bool" else value

    def check(self, value) -> None:
        """UserError unless `value` lies within the offered range (None passes where it is allowed)."""
        if value is None and self.optional:
            return
        low = -float("inf") if self.minimum is None else self.minimum
        high = float("inf") if self.maximum is None else self.maximum
        if not low <= value <= high:
            if self.minimum is not None and self.maximum is not None:
                raise UserError(f"{self.name} must be between {self.minimum} and {self.maximum}, got {value}")
            bound = f"at least {self.minimum}" if self.maximum is None else f"at most {self.maximum}"
            raise UserError(f"{self.name} must be {bound}, got {value}")

    def _number(self, text, words: str) -> float:
        try:
            return float(str(text).replace(",", "")) if isinstance(text, str) else float(text)
        except ValueError:
            raise UserError(f"{self.name} must be {words}, got {text!r}") from None


def _setting(f: dataclasses.Field) -> Setting:
    kind = str(f.type).replace(" | None", "").replace("None | ", "")
    factory = f.default_factory  # MISSING unless the default is a list or dict (`setting`)
    default = factory() if f.default is dataclasses.MISSING and callable(factory) else f.default
    meta = dict(f.metadata)
    return Setting(f.name, kind, "None" in str(f.type), default, meta.pop("help", ""), **meta)


def settings(cls) -> dict[str, Setting]:
    """{field name: Setting} for every field of the settings dataclass `cls`, in declaration order."""
    return {f.name: _setting(f) for f in dataclasses.fields(cls)}


def setting_of(cls, name: str) -> Setting:
    found = settings(cls).get(name)
    if found is None:
        raise KeyError(f"{cls.__name__} has no setting {name}")
    return found


def check_bounds(obj, *names: str) -> None:
    """Check the named fields of a settings object against their declared range."""
    for name in names:
        setting_of(type(obj), name).check(getattr(obj, name))


def from_values(cls, values: dict[str, Any], noun: str = ""):
    """What a person typed (a form, the command line) as a validated `cls`: empty means the field's default,
    numbers may come as text, list fields take comma-separated text. Unknown names are refused."""
    known = settings(cls)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"unknown {noun + ' ' if noun else ''}setting(s): {', '.join(unknown)}")
    given = {name: known[name].parse(value) for name, value in values.items()}
    return cls(**{name: value for name, value in given.items() if value is not EMPTY})
