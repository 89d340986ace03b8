"""`alignstudio export`: the store's labels as a versioned `datasets` snapshot (+ JSONL/CSV/Parquet)."""

from __future__ import annotations

from ..services.data.snapshots import KINDS
from .common import services


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="materialize a training-ready snapshot (DPO or KTO) from the store",
        description="Writes a datasets folder under WORKSPACE/snapshots (its fingerprint goes into "
        "run cards) and, with --out, copies as .jsonl/.csv/.parquet.",
    )
    p.add_argument("--kind", choices=KINDS, default="dpo")
    p.add_argument("--out", action="append", default=[], help="also write this file (repeatable)")
    p.add_argument(
        "--source",
        action="append",
        default=None,
        help="only labels from this source: human, arena, judge, judge:NAME, import, synthetic (repeatable)",
    )
    p.add_argument(
        "--exclude-source",
        action="append",
        default=None,
        metavar="SOURCE",
        help="leave out labels from this source, e.g. synthetic (repeatable; same names as --source)",
    )
    p.add_argument(
        "--include-pairs",
        action="store_true",
        help="KTO: also derive unpaired rows from pairwise labels (chosen -> desirable)",
    )
    p.add_argument(
        "--push-to-hub",
        default=None,
        metavar="REPO",
        help="also push the snapshot and its dataset card to this Hub dataset repository (OWNER/NAME), with "
        "datasets' push_to_hub; the token comes from the HF_TOKEN environment variable only. If the push fails, "
        "nothing is kept",
    )
    p.add_argument("--public", action="store_true", help="with --push-to-hub: a public repository (default private)")
    p.add_argument("--license", default="other", help="the license named in the dataset card (default: other)")
    p.set_defaults(func=run)


def run(args) -> int:
    snap = services(args).data.export(
        args.kind,
        out=args.out,
        sources=args.source,
        include_pairs=args.include_pairs,
        exclude_sources=args.exclude_source,
        push_to_hub=args.push_to_hub,
        private=not args.public,
        license_id=args.license,
    )
    print(f"snapshot {snap.id}: {snap.rows} {snap.kind} rows, fingerprint {snap.fingerprint}")
    if snap.left_out:
        print(f"  {snap.left_out_line()}")
    print(f"  datasets folder: {snap.path}")
    for path in snap.files:
        print(f"  file: {path}")
    for path in snap.cards:
        print(f"  dataset card: {path}")
    if snap.hub_url:
        print(f"  pushed to: {snap.hub_url}")
    return 0
