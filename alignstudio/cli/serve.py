"""`alignstudio serve`: the web app (app.py calls this)."""

from __future__ import annotations

import ipaddress

from ..core.errors import UserError
from .common import workspace


def register(sub) -> None:
    p = sub.add_parser("serve", help="start the web app")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--model", default="smollm2", help="SFT model to sample from (name or checkpoint folder)")
    p.add_argument("--prefetch", type=int, default=3, help="pairs generated ahead while you read")
    p.add_argument("--auth", default=None, metavar="FILE|env",
                   help="require login: a users file from `alignstudio users add`, or 'env' for $ALIGNSTUDIO_USERS")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback address without --auth")
    p.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    if not _is_loopback(args.host) and not args.auth and not args.insecure:
        raise UserError(f"refusing to listen on {args.host} without --auth; pass --insecure to do it anyway")
    from ..services.auth import Accounts
    from ..services.container import Services
    from ..ui.app import launch

    print("loading the model (the first start converts the embedded SmolLM2, ~20 s) ...", flush=True)
    accounts = Accounts.load(args.auth) if args.auth else None  # bad users file: fail before loading models
    services = Services.build(workspace(args), args.model, prefetch_depth=args.prefetch)
    launch(services, host=args.host, port=args.port, accounts=accounts)
    return 0
