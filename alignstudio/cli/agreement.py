"""`alignstudio agreement`: per-annotator quality: labels, speed, agreement with the others' consensus, Cohen's
kappa against each other annotator, Fleiss' kappa for the campaign, and left-side and longer-answer leanings."""

from __future__ import annotations

import json

from .common import services


def register(sub) -> None:
    p = sub.add_parser(
        "agreement",
        help="per-annotator counts, speed, agreement with the others' consensus, kappa, biases",
        description="Reads the human pairwise labels in the store. Each figure comes with the count it rests on; "
        "published human-human agreement (about 63-77%%) is printed for context.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=run)


def run(args) -> int:
    report = services(args).data.annotator_quality()
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
    return 0
