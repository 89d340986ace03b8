"""Annotator accounts: a users file of `name:pbkdf2_sha256$iterations$salt$hash` lines, checked in constant time.

Passwords are never stored in clear; the file (or the ALIGNSTUDIO_USERS environment variable, same lines) is
read at start-up. hashlib's PBKDF2 is the standard-library KDF; no extra dependency is needed for it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from ..core.errors import UserError

ENV_VAR = "ALIGNSTUDIO_USERS"
ITERATIONS = 200_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    if len(password) < 8:
        raise UserError("a password needs at least 8 characters")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def _check(password: str, encoded: str) -> bool:
    try:
        scheme, iterations, salt, expected = encoded.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


def parse_users(text: str, where: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for number, line in enumerate(re.split(r"[\n,]", text), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, encoded = line.partition(":")
        if not sep or not _NAME.match(name) or not encoded.startswith("pbkdf2_sha256$"):
            raise UserError(f"{where}, entry {number}: expected NAME:pbkdf2_sha256$... "
                            "(make one with `alignstudio users add`)")
        users[name] = encoded
    if not users:
        raise UserError(f"{where} has no users")
    return users


class Accounts:
    def __init__(self, users: dict[str, str]):
        self._users = users

    @classmethod
    def load(cls, source: str) -> "Accounts":
        """`source` is a users file, or 'env' for the ALIGNSTUDIO_USERS environment variable."""
        if source == "env":
            text = os.environ.get(ENV_VAR, "")
            if not text:
                raise UserError(f"--auth env: the {ENV_VAR} environment variable is empty")
            return cls(parse_users(text, ENV_VAR))
        path = Path(source)
        if not path.is_file():
            raise UserError(f"--auth: users file {path} does not exist")
        return cls(parse_users(path.read_text(encoding="utf-8"), str(path)))

    def names(self) -> list[str]:
        return sorted(self._users)

    def verify(self, username: str, password: str) -> bool:
        encoded = self._users.get(username)
        if encoded is None:
            _check(password, hash_password("x" * 8))  # same work for unknown names: no timing oracle
            return False
        return _check(password, encoded)


def add_user(path: Path, name: str, password: str) -> None:
    """Add or replace one user in a users file (written atomically)."""
    if not _NAME.match(name):
        raise UserError(f"user name {name!r} must be letters, digits, '_', '.', '@' or '-'")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    lines = [line for line in lines if not line.startswith(f"{name}:")]
    lines.append(f"{name}:{hash_password(password)}")
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
