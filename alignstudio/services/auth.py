"""Accounts: a users file of `name:pbkdf2_sha256$iterations$salt$hash:role` lines, checked in constant time.

Passwords are never stored in clear; the file (or the ALIGNSTUDIO_USERS environment variable, same lines) is
read at start-up. hashlib's PBKDF2 is the standard-library KDF; no extra dependency is needed for it.
Each account is an `admin` or an `annotator`; this module only stores and reports the role (the rules on
what a role may do live with the services that do it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..core.errors import UserError

ENV_VAR = "ALIGNSTUDIO_USERS"
ITERATIONS = 200_000
ROLES = ("admin", "annotator")
DEFAULT_ROLE = "annotator"  # what `users add` gives when no --role is named
# Lines written before roles existed (`name:hash`) could do everything, so they keep doing it: admin.
LEGACY_ROLE = "admin"
MAX_USERS_BYTES = 1 << 20  # a users file is a few lines per person; anything bigger is the wrong file
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
# iterations capped so a hand-edited line cannot make every login burn minutes of CPU
_HASH = re.compile(r"^pbkdf2_sha256\$([1-9][0-9]{0,6})\$[0-9a-f]{16,128}\$[0-9a-f]{64}$")


@dataclass(frozen=True)
class Account:
    hash: str
    role: str = LEGACY_ROLE


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    if len(password) < 8:
        raise UserError("a password needs at least 8 characters")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def _check(password: str, encoded: str) -> bool:
    _, iterations, salt, expected = encoded.split("$")  # the shape was checked when the file was read
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


@lru_cache(maxsize=1)
def _decoy() -> str:
    return hash_password("x" * 8)


def _role(value: str, where: str) -> str:
    if value not in ROLES:
        raise UserError(f"{where}: unknown role {value!r}; use one of {', '.join(ROLES)}")
    return value


def parse_users(text: str, where: str) -> dict[str, Account]:
    users: dict[str, Account] = {}
    for number, line in enumerate(re.split(r"[\n,]", text), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")  # the hash holds no ':', so name:hash[:role] splits unambiguously
        if len(parts) not in (2, 3) or not _NAME.match(parts[0]) or not _HASH.match(parts[1]):
            raise UserError(
                f"{where}, entry {number}: expected NAME:pbkdf2_sha256$...[:ROLE] "
                "(make one with `alignstudio users add`)"
            )
        role = _role(parts[2], f"{where}, entry {number}") if len(parts) == 3 else LEGACY_ROLE
        users[parts[0]] = Account(parts[1], role)
    if not users:
        raise UserError(f"{where} has no users")
    return users


def _read_users_file(path: Path) -> str:
    if path.stat().st_size > MAX_USERS_BYTES:
        raise UserError(
            f"{path}: {path.stat().st_size:,} bytes is too big for a users file (limit {MAX_USERS_BYTES:,})"
        )
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a users file (not valid UTF-8 text)") from None


class Accounts:
    def __init__(self, users: dict[str, Account]):
        self._users = users

    @classmethod
    def load(cls, source: str) -> "Accounts":
        """`source` is a users file, or 'env' for the ALIGNSTUDIO_USERS environment variable."""
        if source == "env":
            text = os.environ.get(ENV_VAR, "")
            if not text:
                raise UserError(f"--auth env: the {ENV_VAR} environment variable is empty")
            if len(text) > MAX_USERS_BYTES:
                raise UserError(f"{ENV_VAR} is too long (limit {MAX_USERS_BYTES:,} characters)")
            return cls(parse_users(text, ENV_VAR))
        path = Path(source)
        if not path.is_file():
            raise UserError(f"--auth: users file {path} does not exist")
        return cls(parse_users(_read_users_file(path), str(path)))

    def names(self) -> list[str]:
        return sorted(self._users)

    def role(self, name: str) -> str:
        """'admin' or 'annotator'; an unknown name is a UserError (callers ask only about a logged-in user)."""
        account = self._users.get(name)
        if account is None:
            raise UserError(f"no account named {name!r}")
        return account.role

    def verify(self, username: str, password: str) -> bool:
        account = self._users.get(username)
        if account is None:
            _check(password, _decoy())  # same work for unknown names: no timing oracle
            return False
        return _check(password, account.hash)


def add_user(path: Path, name: str, password: str, role: str = DEFAULT_ROLE) -> None:
    """Add or replace one user in a users file (written atomically)."""
    if not _NAME.match(name):
        raise UserError(f"user name {name!r} must be letters, digits, '_', '.', '@' or '-'")
    _role(role, f"user {name}")
    lines = _read_users_file(path).splitlines() if path.exists() else []
    lines = [line for line in lines if not line.startswith(f"{name}:")]
    lines.append(f"{name}:{hash_password(password)}:{role}")
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
