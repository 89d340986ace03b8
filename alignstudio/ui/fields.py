"""Form fields several tabs share, built from a settings dataclass field (its default, bounds, label and help
written once, in the dataclass): one number box (`number_box`; empty where empty means "the default") and a
control for any field (`setting_control`).

Gradio 6.31's Number box draws an empty value (None) as 0 whatever its placeholder (its frontend sets
`value ??= 0`), so a field where empty means "chosen for you" or "all" would read as a literal 0. Such a field
is a one-line text box with a placeholder naming the default; `optional_number` parses what was typed.
"""

from __future__ import annotations

import math

import gradio as gr

from ..core.errors import UserError
from ..services import setting_of


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


def setting_number(cls, name: str, elem_id: str, **kw) -> gr.Number | gr.Textbox:
    """The number box for the setting `cls.name` (see `number_box`)."""
    return number_box(setting_of(cls, name), elem_id, **kw)


def number_box(s, elem_id: str, **kw) -> gr.Number | gr.Textbox:
    """The one number box for a settings field (`core.settings.Setting`): its start value, bounds, label and hint
    come from the field; `kw` may override any of them. A field whose empty value means its default (`empty`
    names it) starts empty, as a text box with that placeholder (see above)."""
    if s.empty is not None:
        return optional_number_box(kw.pop("label", s.title), s.empty, elem_id, **({"info": s.info or s.help} | kw))
    options = {
        "label": s.title,
        "info": s.info or s.help or None,
        "minimum": s.minimum,
        "maximum": s.maximum,
        "elem_id": elem_id,
    }
    if s.step is not None:
        options["step"] = s.step
    if s.type is int:
        options["precision"] = 0
    return gr.Number(s.start, **(options | kw))


def setting_control(s, elem_id: str, **kw):
    """The form control for a settings field by its kind: a switch, a choice, a number box or a text box (a list
    is typed comma-separated)."""
    common = {"label": s.title, "info": s.info or s.help or None, "elem_id": elem_id}
    if s.kind == "bool":
        return gr.Checkbox(s.start, **(common | kw))
    if s.choices and s.kind.startswith("list["):
        return gr.CheckboxGroup(list(s.choices), value=s.start, **(common | kw))
    if s.choices:
        return gr.Dropdown(list(s.choices), value=s.start, **(common | kw))
    if s.kind in ("int", "float"):
        return number_box(s, elem_id, **kw)
    start = ", ".join(map(str, s.start)) if isinstance(s.start, list) else s.start or ""
    return gr.Textbox(start, placeholder=s.empty, lines=1, max_lines=1, **(common | kw))
