"""Sign-in hardening, web-framework free: failed logins throttled per account and per client address with a
growing delay, and login sessions that expire.

With the defaults an attacker gets, per account (whatever addresses the guesses come from): 5 guesses at once,
then waits of 1, 2, 4, ... 60 s between guesses: 10 guesses in the first minute, then one a minute (69 in the
first hour). One address gets 20 guesses (across all accounts) before its own delays start, since several
people behind one NAT may mistype: 25 in its first minute, 84 in its first hour. `attempts_within` recomputes
these numbers; tests/test_access.py checks them.
The price is that someone guessing at an account also delays its owner, by at most `cap_s` a try.
A browser that signed in to an account before carries a device token (`TrustedDevices`, a signed cookie): its
attempts at that account skip the per-address throttle, so a spray from a shared address (one NAT, one proxy)
does not lock the account's owner out; the per-account throttle still applies to them. Without the token the
address throttle refuses before the password is looked at, right or wrong, so it answers no question.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .auth import Accounts

DEFAULT_SESSION_HOURS = 12.0  # a working day; the login page comes back after it
_MAX_NAME = 64  # longer names cannot be accounts; keeping the key short bounds the throttle's memory


@dataclass(frozen=True)
class Backoff:
    free: int  # failed attempts allowed before any delay
    base_s: float = 1.0  # the first delay, doubled at each further failure
    cap_s: float = 60.0  # the longest delay between two attempts
    forget_s: float = 900.0  # no failure for this long: the key starts afresh

    def delay(self, failures: int) -> float:
        return 0.0 if failures < self.free else min(self.cap_s, self.base_s * 2 ** (failures - self.free))


def attempts_within(policy: Backoff, seconds: float) -> int:
    """How many guesses a patient attacker gets in `seconds` against one key, each sent the moment it is allowed."""
    count, now = 0, 0.0
    while True:
        now += policy.delay(count) if count else 0.0
        if now > seconds:
            return count
        count += 1


class LoginThrottle:
    """Thread-safe: the check and the bookkeeping run in worker threads next to the password hashing."""

    def __init__(
        self,
        per_account: Backoff = Backoff(free=5),
        per_address: Backoff = Backoff(free=20),
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ):
        self.per_account, self.per_address = per_account, per_address
        self._clock, self._max_keys = clock, max_keys
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}  # key -> (failures, time of the last)
        self._lock = threading.Lock()

    def _keys(self, name: str, address: str | None) -> list[tuple[tuple[str, str], Backoff]]:
        keys = [(("account", name[:_MAX_NAME]), self.per_account)]
        if address:
            keys.append((("address", address), self.per_address))
        return keys

    def _count(self, key, policy: Backoff, now: float) -> tuple[int, float]:
        failures, last = self._failures.get(key, (0, now))
        return (0, now) if now - last > policy.forget_s else (failures, last)

    def begin(self, name: str, address: str | None) -> float:
        """Seconds to wait before this attempt may be checked; 0 lets it through. A let-through attempt counts
        as a failure until `succeeded` clears it, so guesses sent in parallel cannot all slip through."""
        with self._lock:
            now = self._clock()
            keys = self._keys(name, address)
            wait = 0.0
            for key, policy in keys:
                failures, last = self._count(key, policy, now)
                wait = max(wait, last + policy.delay(failures) - now if failures else 0.0)
            if wait > 0:
                return wait  # refused without looking at the password, and not counted: the owner can retry
            for key, policy in keys:
                self._failures[key] = (self._count(key, policy, now)[0] + 1, now)
            self._prune(now)
            return 0.0

    def succeeded(self, name: str, address: str | None) -> None:
        with self._lock:
            self._failures.pop(("account", name[:_MAX_NAME]), None)
            # the address only loses this attempt: one valid login must not wipe a spray of guesses
            key = ("address", address)
            if address and key in self._failures:
                failures, last = self._failures[key]
                self._failures[key] = (max(0, failures - 1), last)

    def _prune(self, now: float) -> None:
        if len(self._failures) <= self._max_keys:
            return
        forget = max(self.per_account.forget_s, self.per_address.forget_s)
        self._failures = {k: v for k, v in self._failures.items() if now - v[1] <= forget}
        if len(self._failures) > self._max_keys:  # a flood of fresh keys: keep the most recent half
            recent = sorted(self._failures.items(), key=lambda kv: kv[1][1])[-self._max_keys // 2 :]
            self._failures = dict(recent)


@dataclass(frozen=True)
class SignInResult:
    ok: bool
    retry_after_s: float = 0.0  # > 0: refused by the throttle, the password was not looked at


class TrustedDevices:
    """Device tokens (OWASP's "device cookies"): `NAME.ISSUED.MAC`, issued to a browser after a correct password
    for NAME and signed with a key that lives only in this process (a restart forgets every device: the owner
    then signs in once under the address throttle). Holding one proves a past sign-in, not the password."""

    def __init__(self, max_age_s: float = 30 * 86400, clock: Callable[[], float] = time.time, key: bytes | None = None):
        self.max_age_s, self._clock = max_age_s, clock
        self._key = key or secrets.token_bytes(32)

    def _mac(self, name: str, issued: int) -> str:
        return hmac.new(self._key, f"{name}.{issued}".encode(), hashlib.sha256).hexdigest()

    def issue(self, name: str) -> str:
        issued = int(self._clock())
        return f"{name}.{issued}.{self._mac(name, issued)}"

    def holder(self, token: str | None) -> str | None:
        """The account the token was issued for, or None when it is absent, forged or too old."""
        name, _, rest = (token or "").rpartition(".")
        name, _, issued = name.rpartition(".")
        if not name or not issued.isdigit() or len(name) > _MAX_NAME:
            return None
        if not hmac.compare_digest(rest, self._mac(name, int(issued))):
            return None
        return name if 0 <= self._clock() - int(issued) <= self.max_age_s else None


class SignIn:
    """The one door for a login: throttle first, then the (slow, by design) password check."""

    def __init__(
        self, accounts: Accounts, throttle: LoginThrottle | None = None, devices: TrustedDevices | None = None
    ):
        self.accounts, self.throttle = accounts, throttle or LoginThrottle()
        self.devices = devices or TrustedDevices()

    def check(self, username: str, password: str, address: str | None, device: str | None = None) -> SignInResult:
        """`device`: the browser's device token, if any; one issued for `username` skips the address throttle."""
        if self.devices.holder(device) == username:
            address = None
        wait = self.throttle.begin(username, address)
        if wait > 0:
            return SignInResult(False, wait)
        if self.accounts.verify(username, password):
            self.throttle.succeeded(username, address)
            return SignInResult(True)
        return SignInResult(False)


class SessionTokens(dict):
    """A login-token -> user-name map whose entries expire `max_age_s` after the login. Gradio keeps its
    sessions in such a dict (App.tokens) and never ages them; only `get`, `in`, item set/delete and `keys`
    are used on it, so those are the ones that honour the age."""

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.max_age_s, self._clock = max_age_s, clock
        self._born: dict = {}

    def __setitem__(self, token, user) -> None:
        now = self._clock()
        for old in [t for t, born in self._born.items() if now - born > self.max_age_s]:
            self.__delitem__(old)
        self._born[token] = now
        super().__setitem__(token, user)

    def __delitem__(self, token) -> None:
        self._born.pop(token, None)
        super().__delitem__(token)

    def __contains__(self, token) -> bool:
        if not super().__contains__(token):
            return False
        if self._clock() - self._born.get(token, float("-inf")) > self.max_age_s:
            self.__delitem__(token)
            return False
        return True

    def get(self, token, default=None):
        return super().__getitem__(token) if token in self else default
