"""`alignstudio validate`: check DPO/KTO data before training (exit 1 when there are errors)."""

from __future__ import annotations

import json

from ..core.errors import UserError
from .common import services


def register(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="check preference data for the known failure causes",
        description="Prints a report (or JSON with --json). Exit 0: no errors; 1: the data has "
        "errors that would spoil training; 2: bad input.",
    )
    p.add_argument("file", nargs="?", help="JSONL/CSV/Parquet file or datasets folder (omit with --store)")
    p.add_argument("--store", action="store_true", help="validate the store's current labels instead of a file")
    p.add_argument("--kind", choices=("dpo", "kto"), default=None, help="default: from the columns (store: dpo)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument(
        "--tokenizer", default=None, help="model whose tokenizer counts tokens and checks truncation (e.g. smollm2)"
    )
    p.add_argument("--max-length", type=int, default=None, help="training max_length (default TRL's 1024)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..services.data.checks import validate_path

    if bool(args.file) == bool(args.store):
        raise UserError("give a FILE or --store (one of them)")
    opened = services(args) if args.tokenizer or args.store else None  # a file alone: no workspace is touched
    tokenizer = opened.tokenizer(args.tokenizer) if args.tokenizer else None
    if args.store:
        report = opened.data.validate_labels(args.kind or "dpo", tokenizer=tokenizer, max_length=args.max_length)
    else:  # what `services.data.validate_file` runs
        report = validate_path(args.file, args.kind, tokenizer=tokenizer, max_length=args.max_length)
    if args.json:
        print(json.dumps(report.to_dict(include_values=False), indent=2))
    else:
        print(report.to_text())
    return 1 if report.has_errors else 0
