"""Generation backends on remote servers: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI
itself) and Anthropic's messages API.

Both have the local `sampler.Generator`'s interface (`name`, `complete(conversations, temperatures, *, top_p,
max_new_tokens, seed, min_new_tokens=0) -> list[str]`), so sampling, labeling, the arena, evaluation and chat can
use either. Requests run from a thread pool, at most `concurrency` at once per generator (across all its
callers); the SDKs retry (429, 5xx, connection errors) and time out; a failure after the retries is one clear
UserError naming the generator and the server's URL. Every request first passes the caller's request budget
(services/remote_budget.py), on the caller's thread. They have no tokenizer or weights: whatever needs token
probabilities (the local judge, perplexity) skips them. The API key goes into the SDK client only.

What each protocol can honour:
- OpenAI-compatible: temperature, top_p, max_new_tokens and a per-row seed (best effort on the server's side);
  `min_new_tokens` is not part of the protocol and is ignored.
- Anthropic: only max_new_tokens. The API version this SDK speaks (2026-10-21) refuses every sampling parameter,
  so temperature, top_p and seed are not sent: answers come at the model's own settings (`params_not_sent`).
  The settings recorded with a response are the ones asked for; the `anthropic:` or endpoint name says which
  protocol answered.

It knows nothing about names (remote_names.py), the store or the UI.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from ...core.errors import UserError
from .. import remote_budget
from ..judges import Usage, public_url, resolve_api_key
from ..judges.remote import openai_client, sdk_error

log = logging.getLogger(__name__)
# per generator, both protocols: seconds per request, the SDK's retries, requests in flight at once
TIMEOUT_S, MAX_RETRIES, CONCURRENCY = 120.0, 3, 4


class _RemoteGenerator:
    """What both protocols share: the name, the concurrency cap, usage counting and error wording."""

    model = None  # no local weights: perplexity and the local judge do not apply
    tokenizer = None
    params_not_sent: tuple[str, ...] = ()  # settings the protocol cannot carry: asked for, not applied

    def __init__(self, model: str, name: str, concurrency: int):
        if not (model or "").strip():
            raise UserError("a remote generator needs the model name the server serves")
        if concurrency < 1:
            raise UserError("concurrency must be at least 1")
        self.model_name = model.strip()
        self.name = name
        self.concurrency = concurrency
        self.usage = Usage()
        self.lock = threading.Lock()
        self._usage_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)  # per generator, not per call

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    @property
    def url(self) -> str:
        """The server's URL as the client uses it (an SDK default included), without credentials."""
        return (public_url(str(self._client.base_url)) or "?").rstrip("/")

    def _error(self, exc: Exception) -> UserError:
        return UserError(str(sdk_error(exc, f"generator {self.name} at {self.url}")))

    def _count(self, input_tokens, output_tokens) -> None:
        with self._usage_lock:
            self.usage = self.usage + Usage(int(input_tokens or 0), int(output_tokens or 0), 1)

    def _one(
        self, messages: list[dict], temperature: float, top_p: float, max_new_tokens: int, seed: int | None
    ) -> str:
        raise NotImplementedError

    def _limited(self, *args) -> str:
        with self._slots:
            remote_budget.check_cancelled()  # a cancelled job's rows still queued here are not sent
            return self._one(*args)

    def _budget(self) -> None:
        remote_budget.take(self.kind, self.base_url, self.name)

    def complete(
        self,
        conversations: list[list[dict]],
        temperatures: list[float],
        *,
        top_p: float,
        max_new_tokens: int,
        seed: int | None,
        min_new_tokens: int = 0,
    ) -> list[str]:
        """One completion per conversation (seeded per row when `seed` is given), in order. `min_new_tokens`
        has no place in either protocol: it is accepted and ignored."""
        if len(conversations) != len(temperatures):
            raise ValueError("one temperature per conversation")
        seeds = [None if seed is None else seed + i for i in range(len(conversations))]
        workers = max(1, min(self.concurrency, len(conversations)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="remote-gen") as pool:
            futures = []
            for c, t, s in zip(conversations, temperatures, seeds):
                self._budget()  # here, as the caller: over budget, nothing more is sent (what was counted goes)
                futures.append(
                    pool.submit(contextvars.copy_context().run, self._limited, c, t, top_p, max_new_tokens, s)
                )
            return [f.result() for f in futures]

    def complete_many(
        self,
        conversations: list[list[dict]],
        temperatures: list[float],
        *,
        top_p: float,
        max_new_tokens: int,
        seed: int | None,
        min_new_tokens: int = 0,
    ) -> list[str]:
        """Bulk sampling (`sampler.sample_pairs`): the server batches; the cap on requests in flight holds."""
        return self.complete(conversations, temperatures, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)


class RemoteGenerator(_RemoteGenerator):
    """OpenAI chat completions; with `base_url`, any OpenAI-compatible server."""

    kind = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        name: str | None = None,
        timeout: float = TIMEOUT_S,
        max_retries: int = MAX_RETRIES,
        concurrency: int = CONCURRENCY,
        key_env: str | None = None,
    ):
        super().__init__(model, name or f"remote:{(model or '').strip()}", concurrency)
        self.base_url = (base_url or "").strip() or None
        key = resolve_api_key("openai", api_key, self.base_url, key_env)
        self._client = openai_client(key, self.base_url, timeout=timeout, max_retries=max_retries)

    def _one(
        self, messages: list[dict], temperature: float, top_p: float, max_new_tokens: int, seed: int | None
    ) -> str:
        import openai

        extra = {"seed": seed} if seed is not None else {}
        try:
            response = self._client.chat.completions.create(
                model=self.model_name,
                messages=messages,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_new_tokens,
                **extra,
            )
        except openai.APIError as exc:
            raise self._error(exc) from None
        if response.usage is not None:
            self._count(response.usage.prompt_tokens, response.usage.completion_tokens)
        if not response.choices:
            raise UserError(f"generator {self.name}: the server replied without choices")
        return (response.choices[0].message.content or "").strip()


class AnthropicGenerator(_RemoteGenerator):
    """Anthropic messages: the system messages go in `system`; no temperature, top_p or seed (see above)."""

    params_not_sent = ("temperature", "top_p", "seed")
    kind = "anthropic"

    def __init__(
        self,
        model: str,
        api_key: str,
        base_url: str | None = None,
        *,
        name: str | None = None,
        timeout: float = TIMEOUT_S,
        max_retries: int = MAX_RETRIES,
        concurrency: int = CONCURRENCY,
    ):
        from anthropic import Anthropic

        super().__init__(model, name or f"anthropic:{(model or '').strip()}", concurrency)
        self.base_url = (base_url or "").strip() or None
        self._client = Anthropic(api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=max_retries)
        log.info("%s: Anthropic's API takes no temperature, top_p or seed; the model's own settings apply", self.name)

    def _one(
        self, messages: list[dict], temperature: float, top_p: float, max_new_tokens: int, seed: int | None
    ) -> str:
        import anthropic

        system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
        turns = [{"role": m["role"], "content": m["content"]} for m in messages if m.get("role") != "system"]
        try:
            message = self._client.messages.create(
                model=self.model_name,
                max_tokens=max_new_tokens,
                messages=turns,
                **({"system": system} if system else {}),
            )
        except anthropic.APIError as exc:
            raise self._error(exc) from None
        if message.usage is not None:
            self._count(message.usage.input_tokens, message.usage.output_tokens)
        return "".join(
            getattr(block, "text", "") for block in message.content if getattr(block, "type", "") == "text"
        ).strip()
