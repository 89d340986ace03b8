"""Requests per minute to each remote endpoint, per user: the one place every remote generator and judge
request is counted and refused, so no loop, click or API client can spend the operator's key without bound.

The limit is the endpoint's `requests_per_minute` in `--endpoints` (judges/endpoints.py), else DEFAULT_RPM; an
SDK's own endpoint (`openai:MODEL`, `anthropic:MODEL`) and a typed URL get the default. The user is the caller
of the request (core.access; "" for the local user), or the one a background loop charges (`charged_to`: a
prefetch feed charges whoever last asked it for a sample). The window slides over the last 60 s. A request of
the app over budget fails at once with one UserError naming the endpoint and the limit; bulk jobs that opt in
(`patient`) wait for the window instead. Work outside the app (the CLI, a rounds process) is the operator's own:
only an endpoint's written `requests_per_minute` limits it, by waiting. A bulk job can be cancelled
(`cancellable`): its next request then fails with "cancelled", so it stops sending. `take` runs before every
request (services/sampling/remote.py, services/judges/remote.py).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from contextlib import contextmanager

from ..core import access
from ..core.errors import UserError
from .judges import endpoints as configured_endpoints

DEFAULT_RPM = 60  # per user and endpoint, unless the endpoint says otherwise
WINDOW_S = 60.0

_payer: contextvars.ContextVar[str | None] = contextvars.ContextVar("alignstudio_payer", default=None)
_patient: contextvars.ContextVar[bool] = contextvars.ContextVar("alignstudio_patient", default=False)
_cancel: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("alignstudio_cancel", default=None)


class Cancelled(UserError):
    """A bulk job was cancelled: it sends nothing more."""


def configured_limit(endpoint: str) -> int | None:
    configured = configured_endpoints.named(endpoint)
    return configured.requests_per_minute if configured is not None else None


def limit_of(endpoint: str) -> int:
    return configured_limit(endpoint) or DEFAULT_RPM


def endpoint_of(kind: str, base_url: str | None, name: str = "") -> str:
    """The budget a request counts against: the configured endpoint (by a generator name's prefix, else by
    URL), else the SDK's own endpoint (`kind`), else the typed URL as a report shows it."""
    prefix = name.partition(":")[0] if ":" in name else ""
    if prefix and configured_endpoints.named(prefix) is not None:
        return prefix
    url = (base_url or "").rstrip("/")
    for endpoint in configured_endpoints.configured():
        if url and endpoint.base_url.rstrip("/") == url:
            return endpoint.name
    if not url:
        return kind
    from .judges import public_url

    return public_url(url) or kind


def user() -> str:
    payer = _payer.get()
    if payer is not None:
        return payer
    caller = access.current()
    return caller.name if caller is not None else ""


class RequestBudget:
    """Sliding one-minute windows of request times per (endpoint, user)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._sent: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _window(self, key: tuple[str, str], now: float) -> deque[float]:
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] <= now - WINDOW_S:
            sent.popleft()
        return sent

    def take(self, endpoint: str, who: str | None = None, *, wait: bool | None = None) -> None:
        """Count one request to `endpoint` for `who` (default: `user()`), or refuse it (see the module)."""
        in_app = access.current() is not None or _payer.get() is not None
        if not in_app and configured_limit(endpoint) is None:
            check_cancelled()
            return  # the operator's own command (CLI): only a limit they wrote down applies
        who = user() if who is None else who
        wait = (_patient.get() or not in_app) if wait is None else wait
        limit = limit_of(endpoint)
        while True:
            check_cancelled()
            with self._lock:
                now = self._clock()
                sent = self._window((endpoint, who), now)
                if len(sent) < limit:
                    sent.append(now)
                    return
                free_in = sent[0] + WINDOW_S - now
            if not wait:
                raise UserError(
                    f"the request budget for endpoint {endpoint!r} is spent: {limit} requests per minute "
                    f"per user{f' ({who})' if who else ''}; try again in {max(1, round(free_in))} s"
                )
            cancel = _cancel.get()
            (cancel.wait if cancel is not None else time.sleep)(min(max(free_in, 0.01), 1.0))

    def remaining(self) -> list[dict]:
        """Per endpoint and user that sent anything in the last minute: the limit and the requests left."""
        with self._lock:
            now = self._clock()
            rows = [
                {
                    "endpoint": endpoint,
                    "user": who or "(local)",
                    "limit": limit_of(endpoint),
                    "left": max(0, limit_of(endpoint) - len(self._window((endpoint, who), now))),
                }
                for endpoint, who in sorted(self._sent)
            ]
        return [row for row in rows if row["left"] < row["limit"]]

    def reset(self) -> None:
        with self._lock:
            self._sent.clear()


BUDGET = RequestBudget()


def take(kind: str, base_url: str | None, name: str = "") -> None:
    """Before every remote request: cancelled jobs stop here, and the caller's budget pays one request."""
    BUDGET.take(endpoint_of(kind, base_url, name))


def remaining() -> list[dict]:
    """The requests each user has left this minute per endpoint (only those that sent any): for admins."""
    access.require_admin("the request budgets")
    configured = {e.name: e for e in configured_endpoints.configured()}
    rows = BUDGET.remaining()
    seen = {row["endpoint"] for row in rows}
    return rows + [
        {"endpoint": name, "user": "(everyone)", "limit": limit_of(name), "left": limit_of(name)}
        for name in sorted(configured)
        if name not in seen
    ]


def check_cancelled() -> None:
    cancel = _cancel.get()
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled: no more requests are sent")


@contextmanager
def charged_to(who: str):
    """Requests made inside (e.g. a feed's background thread) count against `who`'s budget, failing fast."""
    token = _payer.set(who)
    try:
        yield
    finally:
        _payer.reset(token)


@contextmanager
def patient():
    """A bulk job: over budget, wait for the window to free a request instead of failing."""
    token = _patient.set(True)
    try:
        yield
    finally:
        _patient.reset(token)


@contextmanager
def cancellable(event: threading.Event):
    """Requests made inside stop (Cancelled) once `event` is set."""
    token = _cancel.set(event)
    try:
        yield
    finally:
        _cancel.reset(token)
