"""`alignstudio import`: preference files (ours or a public dataset's own format) into the store, or prompt
files into a named prompt set."""

from __future__ import annotations

from ..core.errors import UserError
from ..services.data.importing import FORMATS
from .common import services


def register(sub) -> None:
    p = sub.add_parser(
        "import",
        help="load preference pairs (or prompt sets) into the store",
        description="Reads prompt/chosen/rejected rows and the public datasets as published: "
        "HH-RLHF, UltraFeedback (binarized or raw), SHP, Orca DPO pairs, OASST "
        "(recognized from the columns, or named with --format). Every row is checked "
        "first; on the first bad row nothing is stored and the error names the line "
        "and the field.",
    )
    p.add_argument("file", nargs="?", help=".jsonl, .csv, .parquet or a datasets folder")
    p.add_argument("--format", default="auto", choices=FORMATS, help="the file's format (default: from its columns)")
    p.add_argument("--hub", default=None, metavar="NAME", help="read a dataset from the Hugging Face Hub instead")
    p.add_argument("--split", default="train", help="the Hub split to read (with --hub)")
    p.add_argument("--limit", type=int, default=None, help="store only the first N pairs")
    p.add_argument("--prompts", action="store_true", help="the file is a prompt set, not preference pairs")
    p.add_argument("--name", default=None, help="prompt set name (default: file name)")
    p.add_argument("--source", default="import", help="source recorded with imported labels")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.prompts and not args.file:
        raise UserError("--prompts needs a file")
    print(
        services(args).data.import_file(
            args.file,
            prompts=args.prompts,
            name=args.name,
            fmt=args.format,
            hub=args.hub,
            split=args.split,
            limit=args.limit,
            source=args.source,
        )
    )
    return 0
