"""`alignstudio import`: preference files into the store, or prompt files into a named prompt set."""

from __future__ import annotations

from ..core.formats import load_preferences
from ..core.store import Store
from ..services.prompt_sets import PromptSets
from .common import workspace


def register(sub) -> None:
    p = sub.add_parser("import", help="load prompt/chosen/rejected files (or prompt sets) into the store",
                       description="Every row is checked first; on the first bad row nothing is stored and the "
                                   "error names the line and the field.")
    p.add_argument("file", help=".jsonl, .csv, .parquet or a datasets folder")
    p.add_argument("--prompts", action="store_true", help="the file is a prompt set, not preference pairs")
    p.add_argument("--name", default=None, help="prompt set name (default: file name)")
    p.add_argument("--source", default="import", help="source recorded with imported labels")
    p.set_defaults(func=run)


def run(args) -> int:
    ws = workspace(args)
    if args.prompts:
        name, count = PromptSets(ws).import_file(args.file, args.name)
        print(f"imported {count} prompts as prompt set {name!r}")
        return 0
    rows = load_preferences(args.file)
    count = Store(ws.db_path).import_preferences(rows, source=args.source, prompt_set=args.name or "")
    print(f"imported {count} preference pairs")
    return 0
