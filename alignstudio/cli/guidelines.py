"""`alignstudio guidelines [--set FILE] [--campaign NAME] [--history]`: the labeling guidelines of a campaign.

Without --set, prints the guidelines a label in the campaign is given under now (its own, else the default ones),
with their version. --set saves FILE's markdown as a new version (admins only, where accounts are in force); labels
given before keep the version they were given under.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from ..core.errors import UserError
from . import common


def register(sub) -> None:
    p = sub.add_parser(
        "guidelines",
        help="show or set the labeling guidelines (markdown, versioned)",
        description="A campaign is a prompt set, 'queue' for the labeling queue, or '' (the default: every campaign "
        "without guidelines of its own). Every save is a new version named by a short hash of its text.",
    )
    p.add_argument("--set", dest="set_file", default=None, metavar="FILE", help="markdown file to save ('-': stdin)")
    p.add_argument("--campaign", default="", metavar="NAME", help="prompt set name, or 'queue' (default: every one)")
    p.add_argument("--history", action="store_true", help="list every saved version of the campaign, newest first")
    p.set_defaults(func=run)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the guidelines file {path}: {exc}") from None


def _when(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M UTC")


def run(args) -> int:
    text = _read(args.set_file) if args.set_file else None  # before the services open: a bad path fails fast
    services = common.services(args)
    try:
        guidelines = services.labeling.guidelines
        where = repr(args.campaign) if args.campaign else "every campaign"
        if text is not None:
            saved = guidelines.set(text, args.campaign)
            print(f"saved version {saved.version} of the guidelines for {where}")
            return 0
        if args.history:
            versions = guidelines.history(args.campaign)
            if not versions:
                print(f"no guidelines saved for {where}")
            for v in versions:
                print(f"{v.version}  {_when(v.created)}  {v.author or '-'}")
            return 0
        current = guidelines.current(args.campaign)
        if current is None:
            print(f"no guidelines for {where} (set them with --set FILE)")
            return 0
        origin = "" if current.campaign == args.campaign.strip() else " (the default guidelines)"
        print(f"# version {current.version}{origin}, saved {_when(current.created)} by {current.author or '-'}\n")
        print(current.text, end="")
        return 0
    finally:
        services.close()
