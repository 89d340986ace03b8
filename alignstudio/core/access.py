"""Who may do what in a served app: admins run the loop, annotators label.

`alignstudio serve --auth` turns the policy on (`configure`); each request of the app runs as the logged-in
`Caller` (`acting_as`, set by the UI's one handler wrapper). The operations themselves call `require_admin`,
`require_owner` and `check_typed_path`, so the checks hold wherever a call comes from: the browser, the HTTP
API, or a future front end. Without the policy (the CLI, or `serve` without accounts) the one local user may
do everything, as before. It knows nothing about Gradio.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import UserError

ADMIN, ANNOTATOR = "admin", "annotator"


@dataclass(frozen=True)
class Caller:
    name: str
    role: str


@dataclass
class Policy:
    roles: bool = False                               # accounts with roles are in force (serve --auth)
    path_roots: list[Path] = field(default_factory=list)  # typed paths must lie inside one (empty: any path)
    role_of: Callable[[str], str] | None = None       # account name -> role


_policy = Policy()
_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("alignstudio_caller", default=None)


def configure(*, role_of: Callable[[str], str] | None = None, path_roots: list[Path] | None = None) -> None:
    """Set once by `serve`: roles from the accounts (`role_of`; None: no accounts, one local user); typed model
    paths limited to `path_roots` (None: any)."""
    global _policy
    _policy = Policy(role_of is not None, [Path(p).resolve() for p in path_roots or []], role_of)


def reset() -> None:
    configure()


def caller_for(username: str | None) -> Caller:
    """The caller of one request: the logged-in account with its role, or the one local user (no accounts)."""
    if username and _policy.role_of is not None:
        return Caller(username, _policy.role_of(username))
    return Caller(username or "", ADMIN if not _policy.roles else ANNOTATOR)


@contextmanager
def acting_as(caller: Caller | None):
    token = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(token)


def current() -> Caller | None:
    return _caller.get()


def is_admin() -> bool:
    """True for admins, and for the server's own work (start-up, a round's background thread): every request of
    the app runs as its caller, set by the UI's one handler wrapper, so only internal code runs without one."""
    caller = _caller.get()
    return not _policy.roles or caller is None or caller.role == ADMIN


def require_admin(what: str) -> None:
    """Refuse `what` unless the caller is an admin (or no roles are in force)."""
    if not is_admin():
        raise UserError(f"{what} is for admins; you are signed in as an annotator")


def visible_annotator() -> str | None:
    """The annotator whose labels the caller may see and change: None for everyone's (admins)."""
    if is_admin():
        return None
    caller = _caller.get()
    return caller.name if caller else ""


def require_owner(annotator: str, what: str) -> None:
    """Annotators may change only their own labels."""
    mine = visible_annotator()
    if mine is not None and annotator != mine:  # an annotator's own name: every other label is someone else's
        raise UserError(f"you can {what} only your own labels")


def check_typed_path(path: Path) -> None:
    """A model or data path typed in the app must lie inside the workspace (or a folder the server was started
    with), so the app cannot be pointed at any file on the machine."""
    if not _policy.path_roots or _caller.get() is None:
        return  # no limit configured, or not a request of the app (the server's own start-up, the CLI)
    resolved = path.expanduser().resolve()
    if not any(resolved == root or root in resolved.parents for root in _policy.path_roots):
        raise UserError(f"{path} is outside the workspace; use a registered model name, or start the server "
                        "with --allow-path for this folder")
