"""A generation backend on any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, OpenAI itself).

`RemoteGenerator` has the local `sampling.Generator`'s interface (`name`, `complete(conversations, temperatures,
*, top_p, max_new_tokens, seed) -> list[str]`), so sampling, evaluation and chat can use either. Requests run
from a small thread pool; the openai SDK retries and times out; a failure after its retries is one clear
UserError. It has no tokenizer or weights: whatever needs token probabilities (the local judge, perplexity)
skips it. The API key goes into the SDK client only.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ...core.errors import UserError
from ..judges import Usage, resolve_api_key
from ..judges.remote import openai_client, sdk_error


class RemoteGenerator:
    model = None       # no local weights: perplexity and the local judge do not apply
    tokenizer = None

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None, *,
                 name: str | None = None, timeout: float = 120.0, max_retries: int = 3, concurrency: int = 4,
                 key_env: str | None = None):
        if not (model or "").strip():
            raise UserError("a remote generator needs the model name the server serves")
        if concurrency < 1:
            raise UserError("concurrency must be at least 1")
        self.model_name = model.strip()
        self.base_url = (base_url or "").strip() or None
        self.name = name or f"remote:{self.model_name}"
        self.concurrency = concurrency
        self.usage = Usage()
        self.lock = threading.Lock()
        self._usage_lock = threading.Lock()
        key = resolve_api_key("openai", api_key, self.base_url, key_env)
        self._client = openai_client(key, self.base_url, timeout=timeout, max_retries=max_retries)

    def __repr__(self) -> str:
        return f"<RemoteGenerator {self.name}>"

    def _one(self, messages: list[dict], temperature: float, top_p: float, max_new_tokens: int,
             seed: int | None) -> str:
        import openai

        extra = {"seed": seed} if seed is not None else {}
        try:
            response = self._client.chat.completions.create(
                model=self.model_name, messages=messages, temperature=temperature, top_p=top_p,
                max_tokens=max_new_tokens, **extra)
        except openai.APIError as exc:
            error = sdk_error(exc, f"generator {self.name}")
            raise UserError(str(error)) from None
        if response.usage is not None:
            with self._usage_lock:
                self.usage = self.usage + Usage(int(response.usage.prompt_tokens or 0),
                                                int(response.usage.completion_tokens or 0), 1)
        if not response.choices:
            raise UserError(f"generator {self.name}: the server replied without choices")
        return (response.choices[0].message.content or "").strip()

    def complete(self, conversations: list[list[dict]], temperatures: list[float], *, top_p: float,
                 max_new_tokens: int, seed: int | None) -> list[str]:
        """One completion per conversation (seeded per row when `seed` is given), in order."""
        if len(conversations) != len(temperatures):
            raise ValueError("one temperature per conversation")
        seeds = [None if seed is None else seed + i for i in range(len(conversations))]
        workers = max(1, min(self.concurrency, len(conversations)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="remote-gen") as pool:
            futures = [pool.submit(self._one, c, t, top_p, max_new_tokens, s)
                       for c, t, s in zip(conversations, temperatures, seeds)]
            return [f.result() for f in futures]
