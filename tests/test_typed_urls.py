"""Judge base URLs typed in the Evaluate tab (services/judges/typed_urls.py), through `build_judge` and the real
openai / anthropic SDK clients against servers on loopback: IPv6 spellings of metadata addresses are refused,
a name that does not resolve is refused, the client connects to the address the check approved (a name that
resolves elsewhere a moment later is not followed; Host header and TLS server name stay the name's), and a
redirect is not followed."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fake_llm_server import FakeLLMServer
from servers import self_signed_certificate

from alignstudio.core.errors import UserError
from alignstudio.services.judges import JudgeInput
from alignstudio.services.judges.config import JudgeConfig, build_judge

KINDS = ("openai", "anthropic")
ITEM = JudgeInput([{"role": "user", "content": "Hi"}], "Hello there, how can I help?", "Hey.")
NAME = "judge.rebind.test"  # resolved by the test's resolver below, never by DNS


def typed(kind: str, url: str, **options):
    """The judge the Evaluate tab builds for a typed URL (no key typed)."""
    return build_judge(JudgeConfig.from_form(kind, "fake-judge", url, "", "", **options), store=None)


def base(kind: str, host: str, port: int) -> str:
    return f"http://{host}:{port}" + ("/v1" if kind == "openai" else "")


class Recorder:
    """A loopback HTTP server that records every request it gets and answers `status` (with `location`)."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0, status: int = 200, location: str = ""):
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Host header)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                recorder.requests.append((self.command, self.path, self.headers.get("host", "")))
                self.send_response(status)
                if location:
                    self.send_header("location", location)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def rebinding_resolver(monkeypatch):
    """The system resolver, except that NAME answers whatever `answer[0]` says at the time of the lookup: a DNS
    server that gives the check a harmless address and the connection another one (DNS rebinding)."""
    real = socket.getaddrinfo
    answer = ["127.0.0.1"]

    def getaddrinfo(host, port, *args, **kwargs):
        if str(host).rstrip(".").lower() == NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer[0], int(port)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answer


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:169.254.169.254]/v1",
        "http://[::ffff:a9fe:a9fe]:80/latest/meta-data",
        "http://[::ffff:169.254.170.2]/v1",
        "http://[64:ff9b::a9fe:a9fe]/v1",
        "http://[64:ff9b::169.254.169.254]/v1",
        "http://[64:ff9b:1::a9fe:a9fe]/v1",
        "http://[2002:a9fe:a9fe::1]/v1",
        "http://[::169.254.169.254]/v1",
        "https://[::ffff:169.254.1.1]:8443/v1",
        "http://[::ffff:100.100.100.200]/v1",
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_ipv6_spellings_of_link_local_and_metadata_addresses_are_refused_before_any_request(kind, url):
    with pytest.raises(UserError, match="link-local or cloud-metadata"):
        typed(kind, url)


def test_a_name_that_resolves_to_a_mapped_metadata_address_is_refused(rebinding_resolver):
    rebinding_resolver[0] = "::ffff:169.254.169.254"
    with pytest.raises(UserError, match=r"carries 169\.254\.169\.254"):
        typed("openai", f"http://{NAME}:8000/v1")


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(UserError, match="does not resolve"):
        typed("openai", "http://no-such-judge-server.invalid:8000/v1")


@pytest.mark.parametrize("kind", KINDS)
def test_the_client_connects_to_the_checked_address_not_a_later_answer(kind, rebinding_resolver):
    """Checked while NAME resolves to 127.0.0.1; by the time the judge calls, NAME resolves to 127.0.0.2, where
    another server listens on the same port. The request goes to 127.0.0.1, with the name in the Host header."""
    with FakeLLMServer(api_key=None) as judge_server:
        with Recorder("127.0.0.2", judge_server.port) as elsewhere:
            judge = typed(kind, base(kind, NAME, judge_server.port), max_retries=0)
            rebinding_resolver[0] = "127.0.0.2"
            assert judge.judge(ITEM).winner == "A"
            assert len(judge_server.requests) == 1 and elsewhere.requests == []
            assert judge_server.requests[0].headers["host"] == f"{NAME}:{judge_server.port}"


def test_over_tls_the_server_name_and_certificate_are_the_names(tmp_path, rebinding_resolver, monkeypatch):
    """An https typed URL: the connection goes to the checked address, the TLS server name (SNI) is the name and
    the certificate is checked against the name."""
    cert, key = self_signed_certificate(tmp_path, NAME, f"DNS:{NAME}")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this certificate (for this name) only
    server_names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    with FakeLLMServer(api_key=None) as judge_server:
        judge_server._httpd.socket = context.wrap_socket(judge_server._httpd.socket, server_side=True)
        with Recorder("127.0.0.2", judge_server.port) as elsewhere:
            judge = typed("openai", f"https://{NAME}:{judge_server.port}/v1", max_retries=0)
            rebinding_resolver[0] = "127.0.0.2"
            assert judge.judge(ITEM).winner == "A"
            assert server_names == [NAME] and elsewhere.requests == []
            assert judge_server.requests[0].headers["host"] == f"{NAME}:{judge_server.port}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [307, 302, 308])
def test_a_redirect_is_not_followed(kind, status):
    """The typed server answers with a redirect to another server: that server gets nothing, and the call fails
    with one clear error (a UserError: the URL is wrong, the run stops)."""
    with FakeLLMServer(api_key=None) as other:
        target = base(kind, "127.0.0.1", other.port) + ("/chat/completions" if kind == "openai" else "/v1/messages")
        with Recorder(status=status, location=target) as redirecting:
            judge = typed(kind, base(kind, "localhost", redirecting.port))
            with pytest.raises(UserError, match=f"redirect \\(HTTP {status}\\).*not followed"):
                judge.judge(ITEM)
            assert len(redirecting.requests) == 1 and other.requests == []


def test_configured_endpoints_and_the_cli_keep_the_sdks_own_client():
    """Only typed URLs get the pinned client: a judge built from a config that is not from the form does not."""
    import httpx2

    from alignstudio.services.judges import make_judge
    from alignstudio.services.judges.typed_urls import PinnedTransport

    with FakeLLMServer(api_key=None) as server:
        cli = make_judge("openai", "m", base_url=server.openai_url, api_key="k")
        form = typed("openai", server.openai_url)
    assert not isinstance(cli._client._client._transport, PinnedTransport)
    assert isinstance(form._client._client._transport, PinnedTransport)
    assert isinstance(form._client._client, httpx2.Client) and form._client._client.follow_redirects is False
