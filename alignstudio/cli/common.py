"""Small pieces every CLI command uses: the workspace, services, progress bars."""

from __future__ import annotations

import argparse

from ..core.workspace import Workspace


def workspace(args: argparse.Namespace) -> Workspace:
    return Workspace.open(getattr(args, "workspace", None))


def add_sampling_args(parser: argparse.ArgumentParser, *, pair: bool) -> None:
    group = parser.add_argument_group("sampling")
    if pair:
        group.add_argument("--temperature-a", type=float, default=0.7, help="temperature of response A")
        group.add_argument("--temperature-b", type=float, default=1.0, help="temperature of response B")
        group.add_argument("--temperature", type=float, default=None,
                           help="one temperature for both responses (overrides -a/-b)")
        group.add_argument("--similarity-threshold", type=float, default=0.9,
                           help="resample a pair whose responses are more similar than this (0-1)")
    else:
        group.add_argument("--temperature", type=float, default=0.7)
    group.add_argument("--top-p", type=float, default=0.95)
    group.add_argument("--max-new-tokens", type=int, default=128)
    group.add_argument("--seed", type=int, default=None, help="make the run reproducible")
