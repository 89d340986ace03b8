"""Judge servers the operator configures at start-up (`serve --endpoints FILE`), picked in the browser by name.

Only these endpoints, the SDKs' own ones and ALIGNSTUDIO_JUDGE_BASE_URL get keys from the server's environment
(each names the variable its key is in); a URL typed in the browser gets only the key typed with it
(typed_urls.py). The file is JSON: {"NAME": {"base_url": "http://gpu-box:8000/v1", "kind": "openai",
"key_env": "VLLM_API_KEY"}, ...}; kind is openai (any OpenAI-compatible server) or anthropic, key_env is
optional (no key: the server needs none).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ...core.errors import UserError

KINDS = ("openai", "anthropic")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_url: str
    kind: str = "openai"
    key_env: str | None = None


_configured: dict[str, Endpoint] = {}


def parse_endpoints(text: str, where: str) -> dict[str, Endpoint]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise UserError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f'{where}: expected {{"NAME": {{"base_url": ..., "kind": ..., "key_env": ...}}, ...}}')
    endpoints = {}
    for name, entry in data.items():
        if not _NAME.match(name) or not isinstance(entry, dict):
            raise UserError(f"{where}: endpoint {name!r} needs a plain name and an object")
        unknown = set(entry) - {"base_url", "kind", "key_env"}
        if unknown:
            raise UserError(f"{where}: endpoint {name!r} has unknown fields {sorted(unknown)}")
        url, kind, key_env = entry.get("base_url", ""), entry.get("kind", "openai"), entry.get("key_env")
        if urlsplit(str(url)).scheme not in ("http", "https") or not urlsplit(str(url)).hostname:
            raise UserError(f"{where}: endpoint {name!r}: base_url must look like http://HOST:PORT/v1")
        if kind not in KINDS:
            raise UserError(f"{where}: endpoint {name!r}: kind must be one of {', '.join(KINDS)}")
        if key_env is not None and not (isinstance(key_env, str) and _ENV.match(key_env)):
            raise UserError(f"{where}: endpoint {name!r}: key_env must name an environment variable")
        endpoints[name] = Endpoint(name, str(url).strip(), kind, key_env)
    return endpoints


def load_endpoints(path: str | Path) -> dict[str, Endpoint]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--endpoints: {path} does not exist")
    return parse_endpoints(path.read_text(encoding="utf-8"), str(path))


def configure(endpoints: dict[str, Endpoint]) -> None:
    """Set by `serve` at start-up."""
    _configured.clear()
    _configured.update(endpoints)


def names() -> list[str]:
    return sorted(_configured)


def named(name: str | None) -> Endpoint | None:
    """The configured endpoint called `name`, or None (then `name` is a URL typed in the browser)."""
    return _configured.get((name or "").strip())
