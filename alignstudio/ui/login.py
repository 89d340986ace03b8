"""Gradio's login route, hardened: who is asking (client address), checks off the event loop, a 429 when
throttled, and sessions that expire. Logic lives in services/logins.py; this module only plugs it in.

Gradio 6's POST /login calls `app.auth(username, password)` inline in an async route (awaited only if it is a
coroutine function), and the auth callable never sees the request. So: a coroutine function runs the PBKDF2
check in a worker thread, and a tiny ASGI middleware puts the client address in a context variable for it.
"""

from __future__ import annotations

import contextvars
import math
from contextlib import asynccontextmanager

import anyio
from fastapi import HTTPException

from ..services.logins import SessionTokens, SignIn

_client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_address", default=None)


class ClientAddress:
    """ASGI middleware: remembers the peer address for this request. Behind a reverse proxy on 127.0.0.1,
    uvicorn has already replaced it with the X-Forwarded-For client (its default forwarded_allow_ips)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("client"):
            _client_address.set(scope["client"][0])
        await self.app(scope, receive, send)


def auth_callable(sign_in: SignIn):
    async def check(username: str, password: str) -> bool:
        result = await anyio.to_thread.run_sync(sign_in.check, username, password, _client_address.get())
        if result.retry_after_s > 0:
            wait = math.ceil(result.retry_after_s)
            raise HTTPException(status_code=429, detail=f"Too many failed sign-ins; try again in {wait} s.",
                                headers={"Retry-After": str(wait)})
        return result.ok

    return check


def session_lifespan(max_age_s: float):
    """A FastAPI lifespan that swaps Gradio's never-expiring token dict for one that ages (it runs after
    Gradio's App.configure_app reset the dict, and before the first request)."""

    @asynccontextmanager
    async def lifespan(app):
        app.tokens = SessionTokens(max_age_s)
        yield

    return lifespan


def app_kwargs(session_hours: float) -> dict:
    """FastAPI settings for `launch(app_kwargs=...)`: the address middleware and the session lifespan."""
    from starlette.middleware import Middleware

    return {"middleware": [Middleware(ClientAddress)], "lifespan": session_lifespan(session_hours * 3600)}
