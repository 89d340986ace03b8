"""Remote judges through the official SDKs: OpenAI (and any OpenAI-compatible server via `base_url`) and
Anthropic.

The SDKs own retries (429, 408/409, 5xx and connection errors, with exponential backoff that honours
Retry-After), timeouts and request formation; this module only builds the client, sends the judge prompt
(at temperature 0 where the API takes one), counts tokens, and sorts failures into the two kinds the protocol needs:

- fatal (bad key, no such model, a malformed request): UserError, stop the run, one clear line;
- transient after the SDK's retries (rate limit, server error, timeout, connection): JudgeError, that pair is
  reported as failed and the run goes on.

The key goes straight into the SDK client and is never kept in an attribute of ours, logged or echoed: error
messages are built from the status code and the server's message only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...core.errors import UserError
from .. import remote_budget
from . import Judge, JudgeError, JudgeInput, Usage, Verdict, typed_urls
from .prompt import parse_verdict, render

FATAL_STATUS = {
    400: "the server rejected the request",
    401: "the API key was rejected",
    403: "the API key may not use this model",
    404: "no such model or endpoint",
    422: "the server could not process the request",
}


_SECRET_LOOKING = re.compile(r"(?i)(bearer\s+\S+|sk-[A-Za-z0-9_-]{8,}|(authorization|x-api-key)[\"']?\s*[:=]\s*\S+)")


def _server_message(exc) -> str:
    """The server's own error message, short, with anything from our request's headers blanked out: a server
    (or a proxy) that echoes the request must not get the key shown to whoever reads the error."""
    body = getattr(exc, "body", None)
    message = type(exc).__name__
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            message = str(error["message"])
    request = getattr(exc, "request", None)
    for value in request.headers.values() if request is not None else ():
        for secret in {value, value.removeprefix("Bearer ").strip()}:
            if len(secret) >= 6:
                message = message.replace(secret, "[redacted]")
    return _SECRET_LOOKING.sub("[redacted]", message)[:200]


def sdk_error(exc: Exception, who: str) -> Exception:
    """Turn an SDK exception into UserError (fatal) or JudgeError (transient after retries)."""
    status = getattr(exc, "status_code", None)
    if status in FATAL_STATUS:
        return UserError(f"{who}: {FATAL_STATUS[status]} (HTTP {status}: {_server_message(exc)})")
    name = type(exc).__name__
    if status is not None and 300 <= status < 400:  # only a typed URL's client does not follow redirects
        return UserError(
            f"{who}: the server answered with a redirect (HTTP {status}), which is not followed for a "
            "typed URL; type the final URL"
        )
    if status is not None:
        return JudgeError(f"{who}: HTTP {status} after retries ({_server_message(exc)})")
    if "Timeout" in name:
        return JudgeError(f"{who}: timed out after retries")
    if "Connection" in name:
        return JudgeError(f"{who}: cannot connect to the server after retries")
    return JudgeError(f"{who}: {name}")


def openai_client(api_key: str, base_url: str | None, *, timeout: float, max_retries: int):
    from openai import OpenAI

    # a typed URL's client (typed_urls.connect_only_to) connects only to the checked address, without redirects
    return OpenAI(
        api_key=api_key,
        base_url=base_url or None,
        timeout=timeout,
        max_retries=max_retries,
        http_client=typed_urls.http_client(timeout),
    )


class OpenAIJudge(Judge):
    """OpenAI chat completions. With `base_url` it talks to any OpenAI-compatible server."""

    kind = "openai"
    remote = True

    def __init__(
        self,
        model: str,
        api_key: str,
        *,
        base_url: str | None = None,
        criteria: Sequence[str] | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_tokens: int = 512,
        json_mode: bool | None = None,
    ):
        super().__init__(criteria)
        self.model = model
        self.base_url = base_url or None
        self.max_tokens = int(max_tokens)
        # the official API takes response_format json_object and max_completion_tokens; many compatible servers
        # know only max_tokens, and some reject response_format, so both are off for them by default
        self.official = self.base_url is None
        self.json_mode = self.official if json_mode is None else bool(json_mode)
        self._client = openai_client(api_key, self.base_url, timeout=timeout, max_retries=max_retries)

    def _settings(self) -> dict:
        return {"max_tokens": self.max_tokens, "json_mode": self.json_mode}

    def judge(self, item: JudgeInput) -> Verdict:
        import openai

        messages = render(item.messages, item.response_a, item.response_b, self.criteria, answer="json")
        extra: dict = {"max_completion_tokens" if self.official else "max_tokens": self.max_tokens}
        if self.json_mode:
            extra["response_format"] = {"type": "json_object"}
        remote_budget.take(self.kind, self.base_url)  # cancelled or over budget: nothing is sent
        try:
            response = self._client.chat.completions.create(model=self.model, messages=messages, temperature=0, **extra)
        except openai.APIError as exc:
            raise sdk_error(exc, f"judge {self.name}") from None
        usage = Usage(calls=1)
        if response.usage is not None:
            usage = Usage(int(response.usage.prompt_tokens or 0), int(response.usage.completion_tokens or 0), 1)
        if not response.choices:
            return Verdict(None, error="the reply has no choices", usage=usage, failure="parse")
        text = response.choices[0].message.content or ""
        winner, rationale, error = parse_verdict(text)
        return Verdict(winner, rationale, raw=text[:4000], error=error, usage=usage, failure="parse" if error else "")


class AnthropicJudge(Judge):
    """Anthropic messages API (the system prompt goes in `system`)."""

    kind = "anthropic"
    remote = True

    def __init__(
        self,
        model: str,
        api_key: str,
        *,
        base_url: str | None = None,
        criteria: Sequence[str] | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_tokens: int = 512,
    ):
        from anthropic import Anthropic

        super().__init__(criteria)
        self.model = model
        self.base_url = base_url or None
        self.max_tokens = int(max_tokens)
        self._client = Anthropic(
            api_key=api_key,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=typed_urls.http_client(timeout),
        )

    def _settings(self) -> dict:
        return {"max_tokens": self.max_tokens}

    def judge(self, item: JudgeInput) -> Verdict:
        import anthropic

        system, user = render(item.messages, item.response_a, item.response_b, self.criteria, answer="json")
        remote_budget.take(self.kind, self.base_url)
        try:
            # this SDK's messages.create takes no sampling parameters (temperature, top_p): the model's defaults apply
            message = self._client.messages.create(
                model=self.model, max_tokens=self.max_tokens, system=system["content"], messages=[user]
            )
        except anthropic.APIError as exc:
            raise sdk_error(exc, f"judge {self.name}") from None
        usage = Usage(calls=1)
        if message.usage is not None:
            usage = Usage(int(message.usage.input_tokens or 0), int(message.usage.output_tokens or 0), 1)
        text = "".join(getattr(block, "text", "") for block in message.content if getattr(block, "type", "") == "text")
        winner, rationale, error = parse_verdict(text)
        return Verdict(winner, rationale, raw=text[:4000], error=error, usage=usage, failure="parse" if error else "")
