"""Form fields several tabs share: a number box whose empty value means "the default", and a number box built
from a settings dataclass field (its default, bounds, label and help written once, in the dataclass).

Gradio 6.31's Number box draws an empty value (None) as 0 whatever its placeholder (its frontend sets
`value ??= 0`), so a field where empty means "chosen for you" or "all" would read as a literal 0. Such a field
is a one-line text box with a placeholder naming the default; `optional_number` parses what was typed.
"""

from __future__ import annotations

import math

import gradio as gr

from ..core.errors import UserError
from ..services.settings import setting_of


def optional_number_box(label: str, placeholder: str, elem_id: str, **kw) -> gr.Textbox:
    """A one-line box for a number that may be left empty (empty = the default named by `placeholder`)."""
    return gr.Textbox("", label=label, placeholder=placeholder, lines=1, max_lines=1, elem_id=elem_id, **kw)


def optional_number(value, name: str, *, whole: bool = False, minimum: float | None = None) -> float | int | None:
    """What an optional number box holds: None when empty, else the number (UserError names a bad entry)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(str(value).strip().replace(",", "")) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise UserError(f"{name} must be a number or empty, got {value!r}") from None
    if math.isnan(number):
        return None
    if minimum is not None and number < minimum:
        raise UserError(f"{name} must be at least {minimum:g}, got {number:g}")
    if whole:
        if not number.is_integer():
            raise UserError(f"{name} must be a whole number, got {value}")
        return int(number)
    return number


def setting_number(cls, name: str, elem_id: str, *, label: str | None = None, **kw) -> gr.Number:
    """A number box for the setting `cls.name`: its default, bounds, label and help come from the dataclass
    field (`core.settings.setting`); `kw` may override any of them."""
    s = setting_of(cls, name)
    options = {
        "label": label or s.title,
        "info": s.help or None,
        "minimum": s.minimum,
        "maximum": s.maximum,
        "elem_id": elem_id,
    }
    if s.step is not None:
        options["step"] = s.step
    if s.type is int:
        options["precision"] = 0
    return gr.Number(s.start, **(options | kw))
