"""The headless CLI: `alignstudio COMMAND ...`, one module per command, each with the UI's powers.

Every command module exposes `register(subparsers)` (adds its parser and sets `func`). Bad input raises
`UserError`, which becomes one line on stderr and exit code 2; nothing is written partially.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..core.errors import UserError

COMMANDS = ["serve", "sample", "export", "import_", "validate", "train", "generate", "judge", "eval", "users", "queue", "rounds",
            "export_model"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alignstudio", description="The preference-alignment loop, headless.")
    parser.add_argument("--workspace", default=None,
                        help="runtime state folder (default ./workspace or $ALIGNSTUDIO_WORKSPACE)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    for command in sub.choices.values():  # `alignstudio sample --workspace W` works as well as before it
        command.add_argument("--workspace", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    parser = build_parser()
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
