"""Model servers the operator configures at start-up (`--endpoints FILE` of serve, sample and eval): judges
picked in the browser by name, and generators named `NAME:MODEL` (services/sampling/remote_names.py).

Only these endpoints, the SDKs' own ones and ALIGNSTUDIO_JUDGE_BASE_URL get keys from the server's environment
(each names the variable its key is in); a URL typed in the browser gets only the key typed with it
(typed_urls.py). The file is JSON: {"NAME": {"base_url": "http://gpu-box:8000/v1", "kind": "openai",
"key_env": "VLLM_API_KEY", "models": ["llama-3-8b-sft"], "requests_per_minute": 120}, ...}; kind is openai (any
OpenAI-compatible server) or anthropic, key_env is optional (no key: the server needs none), models is optional
(the models the app's lists offer as NAME:MODEL), requests_per_minute is optional (each user's budget of
requests to it per minute, services/remote_budget.py; default 60). It knows nothing about judges or generators
themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ...core.errors import UserError

KINDS = ("openai", "anthropic")  # also the prefixes of the SDKs' own endpoints' generator names: reserved
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_MODEL = re.compile(r"^[^\s\x00-\x1f\x7f]{1,200}$")  # what a server calls a model: no spaces or controls
MAX_MODELS = 100
MAX_RPM = 100_000


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_url: str
    kind: str = "openai"
    key_env: str | None = None
    models: tuple[str, ...] = ()  # offered in the app's model lists as NAME:MODEL
    requests_per_minute: int | None = None  # per user; None: remote_budget.DEFAULT_RPM


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
        if name.lower() in KINDS:  # `openai:MODEL` must always mean the SDK's own endpoint
            raise UserError(f"{where}: endpoint names {' and '.join(KINDS)} are reserved for the SDKs' own endpoints")
        unknown = set(entry) - {"base_url", "kind", "key_env", "models", "requests_per_minute"}
        if unknown:
            raise UserError(f"{where}: endpoint {name!r} has unknown fields {sorted(unknown)}")
        url, kind, key_env = entry.get("base_url", ""), entry.get("kind", "openai"), entry.get("key_env")
        if urlsplit(str(url)).scheme not in ("http", "https") or not urlsplit(str(url)).hostname:
            raise UserError(f"{where}: endpoint {name!r}: base_url must look like http://HOST:PORT/v1")
        if kind not in KINDS:
            raise UserError(f"{where}: endpoint {name!r}: kind must be one of {', '.join(KINDS)}")
        if key_env is not None and not (isinstance(key_env, str) and _ENV.match(key_env)):
            raise UserError(f"{where}: endpoint {name!r}: key_env must name an environment variable")
        models = _models(entry.get("models", []), f"{where}: endpoint {name!r}")
        rpm = entry.get("requests_per_minute")
        if rpm is not None and not (type(rpm) is int and 1 <= rpm <= MAX_RPM):
            raise UserError(
                f"{where}: endpoint {name!r}: requests_per_minute must be a whole number from 1 to {MAX_RPM:,}"
            )
        endpoints[name] = Endpoint(name, str(url).strip(), kind, key_env, models, rpm)
    return endpoints


def _models(models, where: str) -> tuple[str, ...]:
    if (
        not isinstance(models, list)
        or len(models) > MAX_MODELS
        or not all(isinstance(m, str) and _MODEL.match(m) for m in models)
    ):
        raise UserError(f"{where}: models must be a list of at most {MAX_MODELS} model names without spaces")
    return tuple(dict.fromkeys(models))


def load_endpoints(path: str | Path) -> dict[str, Endpoint]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--endpoints: {path} does not exist")
    return parse_endpoints(path.read_text(encoding="utf-8"), str(path))


def configure(endpoints: dict[str, Endpoint]) -> None:
    """Set at start-up by `serve` (and by `sample` and `eval`, for generator names)."""
    _configured.clear()
    _configured.update(endpoints)


def names() -> list[str]:
    return sorted(_configured)


def configured() -> list[Endpoint]:
    return [_configured[name] for name in names()]


def named(name: str | None) -> Endpoint | None:
    """The configured endpoint called `name`, or None (then `name` is a URL typed in the browser)."""
    return _configured.get((name or "").strip())
