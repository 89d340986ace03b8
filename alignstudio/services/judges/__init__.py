"""AI judges behind one small interface: a judge looks at a prompt and two responses and returns a Verdict.

Backends: `reward` (a reward model trained from the store's labels; the offline judge with signal), `implicit`
(a trained DPO policy's implicit reward), `rules` (the seed's rule-based scorer, for smoke tests), `local` (a
local model's own next-token probabilities of "A" vs "B"; on the embedded 135M model it has no signal),
`openai` (OpenAI and any OpenAI-compatible server through `base_url`: vLLM, llama.cpp server, Ollama, ...) and
`anthropic`. `make_judge` builds one.

This package owns the judge prompt and its parser (`prompt`), the backends (`rules`, `local`, `remote`), the
swapped-order protocol with its cache and token counts (`protocol`), a judge's settings and the one way to
build the judge they describe (`config`), bulk labeling of the store (`bulk`),
judge/human agreement (`agreement`) and the measurement every judge passes before it is used (`trust`).
API keys come from the environment or the caller; a judge never stores them in an attribute, a log, a cache,
a report or its repr.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ...core.errors import UserError
from ...core.models import DEFAULT_MODEL
from .prompt import DEFAULT_CRITERIA, TEMPLATE_VERSION, clean_criteria

KINDS = ("reward", "implicit", "rules", "local", "openai", "anthropic")
_ALIASES = {
    "reward": "reward",
    "reward-model": "reward",
    "rm": "reward",
    "implicit": "implicit",
    "rule": "rules",
    "rules": "rules",
    "rule-based": "rules",
    "local": "local",
    "openai": "openai",
    "openai-compatible": "openai",
    "compatible": "openai",
    "vllm": "openai",
    "ollama": "openai",
    "llamacpp": "openai",
    "llama.cpp": "openai",
    "anthropic": "anthropic",
    "claude": "anthropic",
}
# where the usual local OpenAI-compatible servers listen by default
_DEFAULT_BASE_URLS = {
    "vllm": "http://127.0.0.1:8000/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
    "llama.cpp": "http://127.0.0.1:8080/v1",
}
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
SIDES = ("A", "B")
WINNERS = ("A", "B", "tie")


@dataclass(frozen=True)
class Usage:
    """Tokens and calls of one or more judge requests (`cached` calls cost nothing)."""

    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    cached: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.calls + other.calls,
            self.cached + other.cached,
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class JudgeInput:
    """What a judge sees: the conversation so far and two candidate replies, in the order shown."""

    messages: list[dict]
    response_a: str
    response_b: str


@dataclass(frozen=True)
class Verdict:
    """One judge call's answer for the order it was shown in. `winner` is None when there is no verdict:
    the reply was malformed (`error` says why, `raw` holds it) or the backend failed."""

    winner: str | None
    rationale: str = ""
    raw: str = ""
    error: str = ""
    usage: Usage = field(default_factory=Usage)
    scores: dict = field(default_factory=dict)
    failure: str = ""  # "" | "parse" (malformed reply) | "backend" (call failed) | "input" (prompt too long)

    @property
    def ok(self) -> bool:
        return self.winner in WINNERS

    def to_dict(self) -> dict:
        return {
            "winner": self.winner,
            "rationale": self.rationale,
            "raw": self.raw,
            "error": self.error,
            "failure": self.failure,
            "usage": self.usage.to_dict(),
            "scores": self.scores,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Verdict":
        return cls(
            data.get("winner"),
            data.get("rationale", ""),
            data.get("raw", ""),
            data.get("error", ""),
            Usage(**data.get("usage", {})),
            dict(data.get("scores") or {}),
            data.get("failure", ""),
        )


class JudgeError(Exception):
    """A backend call that failed after the SDK's own retries (rate limit, server error, timeout): the pair
    is reported as failed and the run goes on. Fatal problems (bad key, unknown model) raise UserError."""


class Judge:
    """Base class. Subclasses set `kind`, `model`, and implement `judge` (and `judge_many` when batching pays).

    `remote` judges are called from a bounded thread pool and their verdicts are cached by content; local
    ones are called in batches on this thread.
    """

    kind: str = ""
    model: str = ""
    remote: bool = False
    batch_size: int = 8
    base_url: str | None = None
    price_in: float | None = None  # dollars per million input tokens (None = unknown)
    price_out: float | None = None  # dollars per million output tokens

    def __init__(self, criteria: Sequence[str] | None = None):
        self.criteria = clean_criteria(criteria) if criteria is not None else tuple(DEFAULT_CRITERIA)

    @property
    def name(self) -> str:
        """Short, stable name; events get source = "judge:" + name."""
        return safe_name(self.kind if not self.model else f"{self.kind}-{short_model_name(self.model)}")

    @property
    def source(self) -> str:
        return f"judge:{self.name}"

    def fingerprint(self) -> str:
        """Everything that changes a verdict for the same content (never the key): the cache's namespace."""
        data = [self.kind, self.model, self.base_url or "", TEMPLATE_VERSION, list(self.criteria), self._settings()]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def _settings(self) -> dict:
        return {}

    def judge(self, item: JudgeInput) -> Verdict:
        raise NotImplementedError

    def judge_many(self, items: list[JudgeInput]) -> list[Verdict]:
        return [self.judge(item) for item in items]

    def cost(self, usage: Usage) -> float | None:
        if self.price_in is None and self.price_out is None:
            return None
        return (usage.input_tokens * (self.price_in or 0.0) + usage.output_tokens * (self.price_out or 0.0)) / 1e6

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "model": self.model,
            "base_url": public_url(self.base_url),
            "criteria": list(self.criteria),
        }

    def __repr__(self) -> str:  # never shows a key: judges hold none in attributes
        return f"<{type(self).__name__} {self.name}>"


def public_url(url: str | None) -> str | None:
    """A server URL fit for a report: without user:password@ and without a query string (where keys hide)."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def short_model_name(model: str) -> str:
    """A model name fit for a source name: a folder path becomes its last part (`RUN/model` -> `RUN-model`)."""
    model = (model or "").strip().rstrip("/")
    if os.path.isabs(model) or model.startswith("."):
        parts = [p for p in model.split("/") if p]
        tail = parts[-2:] if len(parts) > 1 and parts[-1] in ("model", "final", "adapter") else parts[-1:]
        model = "-".join(tail)
    return model


def safe_name(text: str) -> str:
    """A name fit for an event source and a file name."""
    return re.sub(r"[^A-Za-z0-9_.:-]+", "-", text.strip()).strip("-")[:80] or "judge"


def normalize_kind(kind: str) -> str:
    key = (kind or "").strip().lower()
    if key not in _ALIASES:
        raise UserError(
            f"unknown judge {kind!r}: use one of {', '.join(KINDS)} "
            "(or vllm / ollama / llamacpp for an OpenAI-compatible server)"
        )
    return _ALIASES[key]


def resolve_api_key(kind: str, api_key: str | None, base_url: str | None, key_env: str | None = None) -> str:
    """The key to use: the one given, else the environment. A local OpenAI-compatible server (base_url given)
    usually needs none, so a placeholder is sent. The key is returned to be handed straight to the SDK."""
    if api_key and api_key.strip():
        return api_key.strip()
    env_name = key_env or KEY_ENV[kind]
    value = os.environ.get(env_name, "").strip()
    if value:
        return value
    if kind == "openai" and base_url:
        return "not-needed"
    raise UserError(
        f"the {kind} judge needs an API key: set {env_name} in the environment or enter it in the key field"
    )


def make_judge(
    kind: str,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    criteria: Sequence[str] | None = None,
    generators: Any = None,
    timeout: float = 60.0,
    max_retries: int = 3,
    max_tokens: int = 512,
    price_in: float | None = None,
    price_out: float | None = None,
    key_env: str | None = None,
    **options: Any,
) -> Judge:
    """Build a judge.

    kind: reward | implicit | rules | local | openai | anthropic (aliases: vllm, ollama, llamacpp = openai with
    their default base_url). model: the judge model (reward: a reward version or folder, default the newest;
    implicit: a trained DPO run; local: a registry name or folder, default the embedded SmolLM2; remote:
    required). generators: a GeneratorPool (or, for the local judge, a callable name -> Generator).
    """
    raw_kind = (kind or "").strip().lower()
    kind = normalize_kind(raw_kind)
    model = (model or "").strip() or None
    base_url = (base_url or "").strip() or _DEFAULT_BASE_URLS.get(raw_kind)
    if kind == "rules":
        from .rules import RuleJudge

        return RuleJudge(criteria=criteria, **options)
    if kind == "reward":
        from .reward import RewardJudge, reward_model_folder

        folder, name = reward_model_folder(model, getattr(generators, "registry", None))
        return RewardJudge(folder, name, criteria=criteria, **options)
    if kind == "implicit":
        from .implicit import make_implicit_judge

        return make_implicit_judge(model, generators, criteria, **options)
    if kind == "local":
        from .local import LocalJudge

        if generators is None:
            raise UserError("the local judge needs the model pool (generators)")
        get: Callable = generators.get if hasattr(generators, "get") else generators
        return LocalJudge(get(model or DEFAULT_MODEL), criteria=criteria, **options)
    if not model:
        raise UserError(f"the {kind} judge needs a model name (--judge-model), e.g. the model your server serves")
    if timeout <= 0 or max_retries < 0:
        raise UserError("timeout must be positive and max_retries at least 0")
    key = resolve_api_key(kind, api_key, base_url, key_env)
    if kind == "openai":
        from .remote import OpenAIJudge

        judge: Judge = OpenAIJudge(
            model,
            key,
            base_url=base_url,
            criteria=criteria,
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
            **options,
        )
    else:
        from .remote import AnthropicJudge

        judge = AnthropicJudge(
            model,
            key,
            base_url=base_url,
            criteria=criteria,
            timeout=timeout,
            max_retries=max_retries,
            max_tokens=max_tokens,
            **options,
        )
    judge.price_in, judge.price_out = price_in, price_out
    return judge


__all__ = [
    "KINDS",
    "Judge",
    "JudgeError",
    "JudgeInput",
    "Usage",
    "Verdict",
    "make_judge",
    "normalize_kind",
    "resolve_api_key",
    "safe_name",
    "short_model_name",
]
