"""`alignstudio serve`: the web app (app.py calls this)."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from ..core.errors import UserError
from ..services.data.importing import MAX_UPLOAD_MB
from ..services.logins import DEFAULT_SESSION_HOURS
from ..services.training import RunSpec
from .common import add_endpoints_arg, configure_endpoints, workspace


def register(sub) -> None:
    p = sub.add_parser("serve", help="start the web app")
    p.add_argument(  # shown here too: `python app.py --help` is this command's help
        "--workspace",
        default=argparse.SUPPRESS,  # `alignstudio --workspace W serve` keeps W
        help="runtime state folder: the store, runs, models (default ./workspace or $ALIGNSTUDIO_WORKSPACE)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument(
        "--model", default=RunSpec.default("model"), help="SFT model to sample from (name or checkpoint folder)"
    )
    p.add_argument("--prefetch", type=int, default=3, help="pairs generated ahead while you read")
    p.add_argument(
        "--auth",
        default=None,
        metavar="FILE|env",
        help="require login: a users file from `alignstudio users add`, or 'env' for $ALIGNSTUDIO_USERS",
    )
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback address without --auth")
    p.add_argument(
        "--session-hours",
        type=float,
        default=DEFAULT_SESSION_HOURS,
        help=f"a login lasts this long, then the login page comes back (default {DEFAULT_SESSION_HOURS:g})",
    )
    p.add_argument(
        "--max-upload-mb",
        type=int,
        default=MAX_UPLOAD_MB,
        help=f"largest file the web app accepts (default {MAX_UPLOAD_MB}); the CLI reads bigger ones",
    )
    p.add_argument(
        "--allow-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder outside the workspace whose models may be typed in the app (repeatable); by "
        "default only registered names, the --model folder and paths inside the workspace",
    )
    add_endpoints_arg(
        p,
        help="model servers with keys from the environment: judges the browser picks by name, "
        'generators NAME:MODEL (the listed models are offered): JSON {"NAME": {"base_url": '
        'URL, "kind": "openai"|"anthropic", "key_env": VAR, "models": [MODEL, ...]}}',
    )
    p.add_argument("--ssl-certfile", default=None, help="serve https with this certificate (PEM)")
    p.add_argument("--ssl-keyfile", default=None, help="the certificate's private key (PEM)")
    p.add_argument(
        "--allowed-origins",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another site (scheme://host[:port]) whose pages may call the app with the user's login "
        "(repeatable); by default only the app's own pages may",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy's address (or network) whose X-Forwarded-For/-Proto headers are believed "
        "(repeatable); by default the headers are ignored and the peer address is the client",
    )
    p.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(args) -> None:
    if not _is_loopback(args.host) and not args.auth and not args.insecure:
        raise UserError(f"refusing to listen on {args.host} without --auth; pass --insecure to do it anyway")
    if not args.session_hours > 0:
        raise UserError(f"--session-hours must be above 0, got {args.session_hours:g}")
    if args.max_upload_mb < 1:
        raise UserError(f"--max-upload-mb must be at least 1, got {args.max_upload_mb}")
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise UserError("--ssl-certfile and --ssl-keyfile go together")
    for folder in args.allow_path:
        if not Path(folder).is_dir():
            raise UserError(f"--allow-path: {folder} is not a folder")
    from ..ui.web_security import normalize_origin  # light: no gradio

    for origin in args.allowed_origins:
        try:
            normalize_origin(origin)
        except ValueError as exc:
            raise UserError(f"--allowed-origins: {exc}") from None
    for proxy in args.trusted_proxy:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise UserError(f"--trusted-proxy: {proxy!r} is not an IP address or network") from None
    for flag, name in (("--ssl-certfile", args.ssl_certfile), ("--ssl-keyfile", args.ssl_keyfile)):
        if name and not Path(name).is_file():
            raise UserError(f"{flag}: {name} does not exist")


def run(args) -> int:
    _check(args)
    from ..services.auth import Accounts
    from ..services.container import Services
    from ..ui.app import launch

    accounts = Accounts.load(args.auth) if args.auth else None  # bad users file: fail before loading models
    configure_endpoints(args)
    print("loading the model (the first start converts the embedded SmolLM2, ~20 s) ...", flush=True)
    services = Services.build(workspace(args), args.model, prefetch_depth=args.prefetch)
    services.limit_access(accounts.role if accounts else None, args.allow_path)
    launch(
        services,
        host=args.host,
        port=args.port,
        accounts=accounts,
        session_hours=args.session_hours,
        max_upload_mb=args.max_upload_mb,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        allowed_origins=tuple(args.allowed_origins),
        trusted_proxies=tuple(args.trusted_proxy),
    )
    return 0
