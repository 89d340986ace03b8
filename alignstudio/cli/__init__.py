"""The headless CLI: `alignstudio COMMAND ...`, one module per command, each with the UI's powers.

Every command module exposes `register(subparsers)` (adds its parser and sets `func`). Bad input raises
`UserError`, which becomes one line on stderr and exit code 2; nothing is written partially.

A command reaches everything through the app's services: `run` opens them (`common.services`, i.e.
`Services.open`) and calls the functions the tabs call; no command imports `core` (but its errors) or `training`
(tests/test_layers.py). A command module imports at its top only what its parser needs (settings dataclasses,
constants) and its services inside `run`: the services bring torch, transformers, pandas or scipy (seconds of
imports), which `--help`, a mistyped flag or `users add` should not wait for. Parsing a command line imports that
command's module alone; help for the whole CLI, or an unknown command, imports them all.
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import os
import sys

from ..core.errors import UserError

COMMANDS = [
    "serve",
    "sample",
    "export",
    "import",
    "validate",
    "train",
    "generate",
    "judge",
    "eval",
    "users",
    "queue",
    "rounds",
    "export-model",
    "agreement",
    "live",
    "guidelines",
]


def _module_of(command: str) -> str:
    """The module of a command: `export-model` -> export_model, `import` -> import_."""
    name = command.replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name


def _command_in(argv: list[str]) -> str | None:
    """The command an argument list names (skipping the top-level `--workspace W`), if it names a known one."""
    args = iter(argv)
    for arg in args:
        if arg in ("-h", "--help"):
            return None  # help for the whole CLI lists every command
        if len(arg) > 2 and "--workspace".startswith(arg):  # argparse also takes an abbreviation (--work W)
            next(args, None)
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The CLI's parser, with every command; given the arguments it will parse, with only the command they name
    (see the module docstring), which parses them the same way."""
    parser = argparse.ArgumentParser(prog="alignstudio", description="The preference-alignment loop, headless.")
    parser.add_argument(
        "--workspace", default=None, help="runtime state folder (default ./workspace or $ALIGNSTUDIO_WORKSPACE)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = _command_in(argv) if argv is not None else None
    for name in [named] if named else COMMANDS:
        importlib.import_module(f"{__name__}.{_module_of(name)}").register(sub)
    for command in sub.choices.values():  # `alignstudio sample --workspace W` works as well as before it
        if "--workspace" not in command._option_string_actions:  # `serve` shows its own (app.py --help)
            command.add_argument("--workspace", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
