"""A tiny stdlib HTTP server on 127.0.0.1 that speaks OpenAI chat.completions and Anthropic messages.

The real SDK clients are pointed at it (`base_url`), so tests check what they send and how we read what comes
back. It records every request (path, headers, JSON body), can answer the next requests with scripted errors
(500, 429, ... with a short Retry-After), can delay replies, counts requests in flight, and checks the API key.
Use it as a context manager (`with FakeLLMServer() as server:`) or through a fixture; it stops when the test ends.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FENCE = re.compile(r"<<<RESPONSE (A|B) (\w+)>>>\n(.*?)\n<<<END RESPONSE \1 \2>>>", re.DOTALL)


def fenced_responses(body: dict) -> tuple[str, str]:
    """The two responses a judge prompt shows (A, B), from an OpenAI or Anthropic request body."""
    text = "\n".join(m["content"] for m in body.get("messages", []) if isinstance(m.get("content"), str))
    found = {m.group(1): m.group(3) for m in FENCE.finditer(text)}
    return found.get("A", ""), found.get("B", "")


def verdict_json(verdict: str, rationale: str = "fake judge") -> str:
    return json.dumps({"rationale": rationale, "verdict": verdict})


def same_answer(text: str = "The answer is 42.") -> Callable[[dict], str]:
    """A responder that always gives the same text, whatever the model, temperature or prompt (two listed models
    that answer alike: every pair the sampler sees is near-identical)."""
    return lambda body: text


def prefers_longer(body: dict) -> str:
    a, b = fenced_responses(body)
    return verdict_json("A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie", "longer is better")


@dataclass
class Request:
    path: str
    headers: dict
    body: dict


@dataclass
class FakeLLMServer:
    responder: Callable[[dict], str] = prefers_longer  # request body -> reply text
    api_key: str | None = "test-key"  # None: accept any key
    delay: float = 0.0  # seconds before each reply
    requests: list[Request] = field(default_factory=list)
    failures: list[tuple[int, dict]] = field(default_factory=list)  # (status, headers) for the next requests
    echo_headers: bool = False  # errors quote the request's headers (a careless proxy)
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- control --------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, *statuses: int, retry_after_ms: int = 5) -> None:
        """Answer the next len(statuses) requests with these HTTP errors (then succeed again)."""
        with self._lock:
            self.failures += [(s, {"retry-after-ms": str(retry_after_ms)}) for s in statuses]

    def start(self) -> "FakeLLMServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- protocol ----------------------------------------------------------------------------------------------
    def _send(self, handler, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _error(anthropic: bool, status: int, message: str) -> dict:
        kind = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}.get(status, "api_error")
        if anthropic:
            return {"type": "error", "error": {"type": kind, "message": message}}
        return {"error": {"message": message, "type": kind, "code": status}}

    def _handle(self, handler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        headers = {k.lower(): v for k, v in handler.headers.items()}
        anthropic = handler.path.rstrip("/").endswith("/v1/messages")
        with self._lock:
            self.requests.append(Request(handler.path, headers, body))
            failure = self.failures.pop(0) if self.failures else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            if failure is not None:
                status, extra = failure
                self._send(handler, status, self._error(anthropic, status, f"injected {status}"), extra)
                return
            if self.api_key is not None:
                sent = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
                if sent != self.api_key:
                    echo = f" (request headers: {dict(handler.headers.items())})" if self.echo_headers else ""
                    self._send(handler, 401, self._error(anthropic, 401, "invalid api key" + echo))
                    return
            if anthropic:
                self._anthropic(handler, body)
            elif handler.path.rstrip("/").endswith("/chat/completions"):
                self._openai(handler, body)
            else:
                self._send(handler, 404, self._error(False, 404, f"no route {handler.path}"))
        finally:
            with self._lock:
                self.in_flight -= 1

    @staticmethod
    def _words(body: dict) -> int:
        texts = [m.get("content", "") for m in body.get("messages", [])] + [body.get("system", "")]
        return sum(len(str(t).split()) for t in texts)

    def _openai(self, handler, body: dict) -> None:
        if not body.get("model") or not isinstance(body.get("messages"), list):
            self._send(handler, 400, self._error(False, 400, "model and messages are required"))
            return
        text = self.responder(body)
        self._send(
            handler,
            200,
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": self._words(body),
                    "completion_tokens": len(text.split()),
                    "total_tokens": self._words(body) + len(text.split()),
                },
            },
        )

    def _anthropic(self, handler, body: dict) -> None:
        if not body.get("model") or not body.get("max_tokens") or not isinstance(body.get("messages"), list):
            self._send(handler, 400, self._error(True, 400, "model, max_tokens and messages are required"))
            return
        text = self.responder(body)
        self._send(
            handler,
            200,
            {
                "id": f"msg_{len(self.requests)}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": self._words(body), "output_tokens": len(text.split())},
            },
        )
