"""Command-line flags built from `RunSpec` fields: a field's default, type and help are written once, in
training/spec.py; `train`, `rounds` and `queue` all take their training flags from here.

Knows argparse and the spec's `Setting`s; knows nothing of running or validating (the spec does that).
"""

from __future__ import annotations

import argparse

from ..training.spec import settings

TYPES = {"int": int, "float": float}


def add_spec_flag(parser, name: str, flag: str | None = None, **overrides) -> argparse.Action:
    """`--name-with-dashes` (or `flag`) for the RunSpec field `name`, its value landing in `args.<name>`:
    the field's default, help and type; a bool field is a switch (`--x/--no-x` where it defaults to on).
    `overrides` go to `add_argument` as they are (another help, nargs, choices, a different default)."""
    setting = settings()[name]
    kw = {"dest": name, "default": setting.default, "help": setting.help}
    if setting.kind == "bool":
        kw["action"] = argparse.BooleanOptionalAction if setting.default else "store_true"
    elif setting.kind in TYPES:
        kw["type"] = TYPES[setting.kind]
    flag = flag or "--" + name.replace("_", "-")
    if "action" not in kw:
        kw["metavar"] = flag.lstrip("-").replace("-", "_").upper()  # what argparse shows for a flag's own dest
    kw.update(overrides)
    return parser.add_argument(flag, **kw)
