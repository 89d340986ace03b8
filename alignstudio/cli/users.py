"""`alignstudio users add FILE NAME [--role admin|annotator]`: create accounts for `serve --auth FILE`."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from ..core.errors import UserError
from ..services.auth import DEFAULT_ROLE, ROLES, add_user


def register(sub) -> None:
    p = sub.add_parser(
        "users",
        help="manage accounts for --auth",
        description="Passwords are stored as salted PBKDF2 hashes, never in clear.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add or replace a user")
    add.add_argument("file", help="users file (created if missing)")
    add.add_argument("name")
    add.add_argument(
        "--role",
        choices=ROLES,
        default=DEFAULT_ROLE,
        help=f"what the account may do (default {DEFAULT_ROLE}; lines from before roles count as admin)",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        try:
            password = getpass.getpass(f"password for {args.name}: ")
            again = getpass.getpass("again: ")
        except EOFError:  # stdin ended (a pipe without --password-stdin): getpass has nothing more to read
            raise UserError("no password typed; to pipe one in, add --password-stdin") from None
        if password != again:
            raise UserError("the passwords differ")
    add_user(Path(args.file), args.name, password, args.role)
    print(f"user {args.name} ({args.role}) saved in {args.file}")
    return 0
