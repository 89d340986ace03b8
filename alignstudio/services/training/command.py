"""The `alignstudio train ...` command line that makes a given run spec: what the Train tab shows under its form.

Built from the same field metadata as the CLI's flags (`Setting.cli`, `Setting.flag`), naming only the values
that differ from a flag's default, so the line parses back (through the real parser) to the same spec.
"""

from __future__ import annotations

import shlex

from ...training.spec import DEFAULT_LOSS, METHOD_ALIASES, RunSpec, settings


def command_args(spec: RunSpec) -> list[str]:
    """`alignstudio train` and the flags that make `spec` (beside the defaults)."""
    args = ["alignstudio", "train"]
    alias = next(
        (name for name, (method, loss) in METHOD_ALIASES.items() if (method, loss) == (spec.method, spec.loss_type)),
        None,
    )
    for name, s in settings().items():
        if s.cli is None:
            continue
        value = getattr(spec, name)
        if name == "method":
            value = alias or value  # --method ipo says it in one word
        elif name == "loss_type" and (alias or value == DEFAULT_LOSS[spec.method]):
            continue  # the method's own loss is --loss-type's default
        elif name != "data" and value == s.default:
            continue
        args += _flag(s, value)
    return args


def command_line(spec: RunSpec) -> str:
    return shlex.join(command_args(spec))


def _flag(s, value) -> list[str]:
    if s.kind == "bool":
        return [s.flag if value else "--no-" + s.flag[2:]]
    if isinstance(value, list):
        words = [_word(v) for v in value]
        return [s.flag, *words] if s.choices else [s.flag, ",".join(words)]  # a list with choices takes words
    return [s.flag, _word(value)]


def _word(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)
