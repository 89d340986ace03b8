"""The browser-facing rules of the app: which origins may call it, how its cookies are flagged, the security
headers of every response, and logout as a POST. One pure-ASGI middleware, wrapped around the whole app.

Why around the whole app: Gradio adds its own CORS middleware (route_utils.CustomCORSMiddleware) after the
user's middleware, so it would sit outside ours and echo any Origin with credentials when the Host is not
localhost. `wrap_app` is called from the app's lifespan, after Starlette built the stack, and puts this one
outside everything (Gradio's CORS included), so nothing it answers reaches a foreign origin.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

# Permissive enough for Gradio's page (inline config script, Svelte styles, blob workers), strict where it
# matters here: no framing by other sites, no plugins, forms and fetches to this origin, no remote images.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
    "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com; font-src 'self' data: https://fonts.gstatic.com; "
    "img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"SAMEORIGIN"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")
_PREFLIGHT_MAX_AGE = b"600"
_METHODS = b"GET, POST, HEAD, OPTIONS"
# Gradio sets the session token twice; the copy without Secure is for plain-http hosts other than localhost
_UNSECURE_COOKIE = "access-token-unsecure-"


def normalize_origin(origin: str) -> str:
    """`scheme://host[:port]`, lower-case, default ports dropped: how browsers write the Origin header."""
    parts = urlsplit(origin.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
        or parts.password
    ):
        raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def rewrite_cookie(value: str, tls: bool) -> str | None:
    """A Set-Cookie header with SameSite=Lax (Gradio writes None), Secure under TLS; None drops it (the unsecure
    duplicate of the session token, under TLS, unless it is a deletion)."""
    name = value.partition("=")[0]
    attrs = [a.strip() for a in value.split(";")]
    kept = [attrs[0]] + [a for a in attrs[1:] if a and a.split("=")[0].strip().lower() not in ("samesite", "secure")]
    deletion = any(a.lower().replace(" ", "") == "max-age=0" for a in attrs[1:])
    if tls and name.strip().startswith(_UNSECURE_COOKIE) and not deletion:
        return None
    samesite = next((a.split("=", 1)[1].strip() for a in attrs[1:] if a.lower().startswith("samesite=")), "")
    kept.append("SameSite=Strict" if samesite.lower() == "strict" else "SameSite=Lax")
    secure = tls or any(a.lower() == "secure" for a in attrs[1:])
    return "; ".join(kept + (["Secure"] if secure else []))


class WebSecurity:
    """Pure ASGI: refuses cross-origin requests from origins not allowed, answers CORS itself for allowed ones,
    rewrites cookies and adds the security headers to every response, and makes logout a POST."""

    def __init__(self, app, allowed_origins=()):
        self.app = app
        self.allowed = {normalize_origin(o) for o in allowed_origins}

    @staticmethod
    def _same_origin(scope, origin: str) -> bool:
        """The Origin's host:port is the Host the request was sent to (the scheme is left out: behind a proxy
        that terminates TLS the app sees http while the page is https)."""
        host = (_header(scope, b"host") or "").lower()
        if not host:
            return False
        if urlsplit(origin).netloc == host:
            return True
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        try:
            return normalize_origin(f"{scheme}://{host}") == origin  # a Host with an explicit default port
        except ValueError:
            return False

    def _origin_allowed(self, scope, origin: str) -> bool:
        try:
            origin = normalize_origin(origin)
        except ValueError:
            return False  # "null" (sandboxed frames, file://) and junk
        return self._same_origin(scope, origin) or origin in self.allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is not None and not self._origin_allowed(scope, origin):
            await self._refuse(
                scope,
                send,
                403,
                "cross-origin request refused: this origin is not allowed (see serve --allowed-origins)",
            )
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        listed = origin is not None and not self._same_origin(scope, normalize_origin(origin))
        if listed and scope["path"].rstrip("/").endswith("/token"):
            # the session token itself is for the app's own pages, even from a listed origin
            await self._refuse(scope, send, 403, "the session token is not given to other origins")
            return
        if listed and scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self._preflight(scope, send, normalize_origin(origin))
            return
        if scope["path"].rstrip("/") == "/logout":
            if scope["method"] != "POST":
                await self._refuse(scope, send, 405, "log out with a POST to /logout", allow=b"POST")
                return
            scope = dict(scope, method="GET")  # Gradio's own logout route (a GET) does the work
        tls = scope.get("scheme") == "https"

        async def secured(message):
            if message["type"] == "http.response.start":
                message = dict(
                    message,
                    headers=self._response_headers(
                        message.get("headers", []), tls, normalize_origin(origin) if listed else None
                    ),
                )
            await send(message)

        await self.app(scope, receive, secured)

    def _response_headers(self, headers, tls: bool, listed_origin: str | None) -> list:
        out = []
        for key, value in headers:
            lower = key.lower()
            if (
                lower in (b"access-control-allow-origin", b"access-control-allow-credentials", b"vary")
                and listed_origin is not None
            ):
                continue  # replaced below, for the listed origin
            if lower == b"set-cookie":
                rewritten = rewrite_cookie(value.decode("latin-1"), tls)
                if rewritten is not None:
                    out.append((key, rewritten.encode("latin-1")))
                continue
            if lower in {name for name, _ in HEADERS} or lower == HSTS[0]:
                continue
            out.append((key, value))
        out += HEADERS + ([HSTS] if tls else [])
        if listed_origin is not None:
            out += [
                (b"access-control-allow-origin", listed_origin.encode()),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]
        return out

    async def _preflight(self, scope, send, origin: str) -> None:
        headers = [
            (b"access-control-allow-origin", origin.encode()),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", _METHODS),
            (b"access-control-max-age", _PREFLIGHT_MAX_AGE),
            (b"vary", b"Origin"),
            (b"content-type", b"text/plain; charset=utf-8"),
        ]
        requested = _header(scope, b"access-control-request-headers")
        if requested:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        headers += HEADERS + ([HSTS] if scope.get("scheme") == "https" else [])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"OK"})

    async def _refuse(self, scope, send, status: int, detail: str, allow: bytes | None = None) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += ([(b"allow", allow)] if allow else []) + HEADERS
        headers += [HSTS] if scope.get("scheme") == "https" else []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def wrap_app(app, allowed_origins=()) -> None:
    """Put WebSecurity outside the app's whole middleware stack (Gradio's CORS middleware included)."""
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    app.middleware_stack = WebSecurity(app.middleware_stack, allowed_origins)
