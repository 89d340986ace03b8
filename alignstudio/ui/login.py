"""Gradio's login route, hardened: who is asking (client address), checks off the event loop, a 429 when
throttled, and sessions that expire. Logic lives in services/logins.py; this module only plugs it in.

Gradio 6's POST /login calls `app.auth(username, password)` inline in an async route (awaited only if it is a
coroutine function), and the auth callable never sees the request. So: a coroutine function runs the PBKDF2
check in a worker thread, and a tiny ASGI middleware puts the client address (and the browser's device cookie)
in a context variable for it, and sets the device cookie after a sign-in. The browser-facing rules (origins,
cookies, headers, logout) are in web_security.py, wrapped around the app by the lifespan here.
"""

from __future__ import annotations

import contextvars
import math
from contextlib import asynccontextmanager

import anyio
from fastapi import HTTPException

from ..services.logins import SessionTokens, SignIn
from . import web_security

DEVICE_COOKIE = "alignstudio-device"
# per request: the peer address, the device cookie sent, and the device cookie to set after a sign-in
_request: contextvars.ContextVar[dict | None] = contextvars.ContextVar("login_request", default=None)


def _cookie(scope, name: str) -> str | None:
    from http.cookies import CookieError, SimpleCookie

    for key, value in scope.get("headers", []):
        if key == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:  # a malformed Cookie header is the browser's problem, not a 500
                return None
            if name in jar:
                return jar[name].value
    return None


class ClientAddress:
    """ASGI middleware: remembers the peer address for this request. uvicorn replaces it with the
    X-Forwarded-For client only for the proxies `serve --trusted-proxy` names (launch sets
    FORWARDED_ALLOW_IPS), so a header sent by anyone else is ignored."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {
            "address": scope["client"][0] if scope.get("client") else None,
            "device": _cookie(scope, DEVICE_COOKIE),
            "issue": None,
        }
        _request.set(state)

        async def with_device(message):
            if message["type"] == "http.response.start" and state["issue"] and message.get("status") == 200:
                cookie = (
                    f"{DEVICE_COOKIE}={state['issue']}; Path=/login; Max-Age={30 * 86400}; HttpOnly; SameSite=Strict"
                )
                message = dict(message, headers=[*message.get("headers", []), (b"set-cookie", cookie.encode())])
            await send(message)

        await self.app(scope, receive, with_device)


def auth_callable(sign_in: SignIn):
    async def check(username: str, password: str) -> bool:
        state = _request.get() or {}
        result = await anyio.to_thread.run_sync(
            sign_in.check, username, password, state.get("address"), state.get("device")
        )
        if result.retry_after_s > 0:
            wait = math.ceil(result.retry_after_s)
            raise HTTPException(
                status_code=429,
                detail=f"Too many failed sign-ins; try again in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        if result.ok:
            state["issue"] = sign_in.devices.issue(username)
        return result.ok

    return check


def session_lifespan(max_age_s: float, allowed_origins=()):
    """A FastAPI lifespan that swaps Gradio's never-expiring token dict for one that ages (it runs after
    Gradio's App.configure_app reset the dict, and before the first request), and wraps the built middleware
    stack in WebSecurity (outside Gradio's CORS middleware, which user middleware cannot be)."""

    @asynccontextmanager
    async def lifespan(app):
        app.tokens = SessionTokens(max_age_s)
        web_security.wrap_app(app, allowed_origins)
        yield

    return lifespan


def app_kwargs(session_hours: float, allowed_origins=()) -> dict:
    """FastAPI settings for `launch(app_kwargs=...)`: the address middleware and the lifespan (sessions that
    expire, the browser-facing security rules)."""
    from starlette.middleware import Middleware

    return {
        "middleware": [Middleware(ClientAddress)],
        "lifespan": session_lifespan(session_hours * 3600, allowed_origins),
    }
