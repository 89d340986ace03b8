"""Which model names are remote generators, and the generator each one means.

Three forms, each `PREFIX:MODEL` with the model as the server calls it:
- `openai:MODEL`: the OpenAI SDK's own endpoint (or $OPENAI_BASE_URL), key $OPENAI_API_KEY;
- `anthropic:MODEL`: Anthropic's messages API (or $ANTHROPIC_BASE_URL), key $ANTHROPIC_API_KEY;
- `ENDPOINT:MODEL`: an endpoint the operator configured with `--endpoints FILE` (judges/endpoints.py); its kind
  picks the protocol, its key_env the key (none: the server is sent no key, never another endpoint's).

Only those prefixes make a name remote, so local names with a ':' (folders, registered versions) stay local;
a registered version wins over a remote reading of the same name. Keys come from the server's environment
only. In the app, the names the lists offer (configured endpoints' `models`) are open to everyone; any other
remote name costs the operator's key at a model nobody listed, so it is for admins (core.access). The generator's
name is the name as given: that is what is recorded with each response, and it holds no URL or key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ...core import access
from ...core.errors import UserError
from ..judges import KEY_ENV
from ..judges import endpoints as configured_endpoints
from ..judges.typed_urls import NO_KEY
from .remote import AnthropicGenerator, RemoteGenerator

SDK_PREFIXES = configured_endpoints.KINDS  # openai, anthropic


@dataclass(frozen=True)
class RemoteName:
    name: str  # as given: PREFIX:MODEL
    kind: str  # the protocol: openai | anthropic
    model: str  # what the server calls the model
    endpoint: configured_endpoints.Endpoint | None = None  # None: the SDK's own endpoint


def parse(name: str) -> RemoteName | None:
    """The remote generator `name` means, or None for a local name."""
    name = (name or "").strip()
    prefix, colon, model = name.partition(":")
    if not colon:
        return None
    endpoint = None if prefix in SDK_PREFIXES else configured_endpoints.named(prefix)
    if prefix not in SDK_PREFIXES and endpoint is None:
        return None
    if not model.strip() or model != model.strip():
        raise UserError(f"{name!r}: name the model after '{prefix}:' (e.g. {prefix}:MODEL)")
    return RemoteName(name, endpoint.kind if endpoint else prefix, model, endpoint)


def offered() -> list[str]:
    """The remote names the app's model lists offer: each configured endpoint's listed models."""
    return [f"{e.name}:{model}" for e in configured_endpoints.configured() for model in e.models]


def check_allowed(remote: RemoteName) -> None:
    """A remote model nobody listed spends the operator's key as the caller likes: admins only."""
    if remote.name not in offered():
        access.require_admin(f"a remote model that is not in the list ({remote.name})")


def _key(remote: RemoteName) -> str:
    endpoint = remote.endpoint
    if endpoint is not None and not endpoint.key_env:
        return NO_KEY  # the server needs none: never send it the environment's OpenAI or Anthropic key
    variable = endpoint.key_env if endpoint is not None else KEY_ENV[remote.kind]
    key = os.environ.get(variable, "").strip()
    if not key:
        raise UserError(
            f"generator {remote.name} needs an API key: set {variable} in the environment of the app or command"
        )
    return key


def build(remote: RemoteName, **options):
    """The generator for a remote name (its client is built; nothing is sent yet). `options`: timeout,
    max_retries, concurrency (remote.py's defaults otherwise)."""
    base_url = remote.endpoint.base_url if remote.endpoint is not None else None
    options["name"] = remote.name
    if remote.kind == "anthropic":
        return AnthropicGenerator(remote.model, _key(remote), base_url, **options)
    return RemoteGenerator(remote.model, base_url, _key(remote), **options)
