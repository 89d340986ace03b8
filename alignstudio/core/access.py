"""Who may do what in a served app: admins run the loop, annotators label.

`alignstudio serve --auth` turns the policy on (`configure`); each request of the app runs as the logged-in
`Caller` (`acting_as`, set by the UI's one handler wrapper). The operations themselves call `require_admin`,
`require_owner` and `check_typed_path`, so the checks hold wherever a call comes from: the browser, the HTTP
API, or a future front end. Without the policy (the CLI, or `serve` without accounts) the one local user may
do everything, as before. It knows nothing about Gradio.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError

ADMIN, ANNOTATOR = "admin", "annotator"
# The allowed folders travel to a training worker (a separate process) in its environment, so it checks the
# paths of the spec it receives against the same policy (os.pathsep-separated; absent: any path).
PATH_ROOTS_ENV = "ALIGNSTUDIO_PATH_ROOTS"
NOT_ALLOWED = "is outside the workspace and the folders this server may read"


@dataclass(frozen=True)
class Caller:
    name: str
    role: str


# The server's own work that must act with an admin's rights (a training worker reading its spec): it says so.
SERVER = Caller("(server)", ADMIN)


@dataclass
class Policy:
    roles: bool = False  # accounts with roles are in force (serve --auth)
    path_roots: list[Path] = field(default_factory=list)  # typed paths must lie inside one (empty: any path)
    role_of: Callable[[str], str] | None = None  # account name -> role


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
    """True for admins, and for everyone when no roles are in force (the CLI, `serve` without accounts). With
    roles, code that runs with no caller is refused: every request of the app runs as its caller (the UI's one
    handler wrapper sets it), so a handler that forgot to say who calls gets no admin rights by accident; the
    server's own work that needs them runs `acting_as(SERVER)`."""
    caller = _caller.get()
    return not _policy.roles or (caller is not None and caller.role == ADMIN)


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


def require_owner(owner: str | None, missing: str) -> None:
    """Annotators may change only their own labels. `owner` is the label's annotator, None when there is no such
    label: both get the one answer `missing`, so an annotator cannot probe which ids exist."""
    mine = visible_annotator()
    if owner is None or (mine is not None and owner != mine):
        raise UserError(missing if mine is None else f"{missing} (you can change only your own labels)")


def check_typed_path(path: Path | str) -> None:
    """A model, data, judge or run path typed in the app must lie inside the workspace (or a folder the server was
    started with), so the app cannot be pointed at any file on the machine. Call it before the file is looked
    at: the answer is the same whether the file exists or not."""
    if not _policy.path_roots or _caller.get() is None:
        return  # no limit configured, or not a request of the app (the server's own start-up, the CLI)
    resolved = Path(path).expanduser().resolve()
    if not any(resolved == root or root in resolved.parents for root in _policy.path_roots):
        raise UserError(
            f"{path} {NOT_ALLOWED}: use a file or model inside the workspace, or start the server "
            "with --allow-path for its folder"
        )


def roots_environment() -> dict[str, str]:
    """The environment entry that hands the allowed folders to a training worker (empty: no limit)."""
    return {PATH_ROOTS_ENV: os.pathsep.join(map(str, _policy.path_roots))} if _policy.path_roots else {}


def configure_from_environment(environ=os.environ) -> None:
    """In a training worker: the allowed folders the server handed over (none: any path, as for the CLI)."""
    roots = [p for p in environ.get(PATH_ROOTS_ENV, "").split(os.pathsep) if p]
    configure(path_roots=roots or None)
