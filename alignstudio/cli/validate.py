"""`alignstudio validate`: check DPO/KTO data before training (exit 1 when there are errors)."""

from __future__ import annotations

import json

from ..core.errors import UserError
from ..core.store import Store
from .common import workspace


def register(sub) -> None:
    p = sub.add_parser("validate", help="check preference data for the known failure causes",
                       description="Prints a report (or JSON with --json). Exit 0: no errors; 1: the data has "
                                   "errors that would spoil training; 2: bad input.")
    p.add_argument("file", nargs="?", help="JSONL/CSV/Parquet file or datasets folder (omit with --store)")
    p.add_argument("--store", action="store_true", help="validate the store's current labels instead of a file")
    p.add_argument("--kind", choices=("dpo", "kto"), default=None, help="default: from the columns (store: dpo)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.add_argument("--tokenizer", default=None,
                   help="model whose tokenizer counts tokens and checks truncation (e.g. smollm2)")
    p.add_argument("--max-length", type=int, default=None, help="training max_length (default TRL's 1024)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..services.data.checks import validate_path, validate_store

    if bool(args.file) == bool(args.store):
        raise UserError("give a FILE or --store (one of them)")
    tokenizer = None
    ws = None
    if args.tokenizer or args.store:
        ws = workspace(args)
    if args.tokenizer:
        from ..core.models import load_tokenizer
        from ..core.registry import ModelRegistry

        ref = ModelRegistry(ws, Store(ws.db_path)).resolve(args.tokenizer)
        tokenizer = load_tokenizer(ref.base_folder or ref.folder)
    if args.store:
        report = validate_store(Store(ws.db_path), args.kind or "dpo", tokenizer=tokenizer,
                                max_length=args.max_length)
    else:
        report = validate_path(args.file, args.kind, tokenizer=tokenizer, max_length=args.max_length)
    if args.json:
        print(json.dumps(report.to_dict(include_values=False), indent=2))
    else:
        print(report.to_text())
    return 1 if report.has_errors else 0
