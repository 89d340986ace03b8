"""Base URLs typed in the browser: checked before any request, and never sent the server's own keys.

Anyone who can open the app can type a URL. A key from the server's environment (OPENAI_API_KEY, ...) goes
only to endpoints the operator configured at start-up (the SDKs' own endpoints, ALIGNSTUDIO_JUDGE_BASE_URL);
a typed URL gets the key typed in the same form, or none. Link-local and cloud-metadata addresses are refused
(the classic server-side request forgery target), whatever the host name resolves to, also when written as an
IPv6 address that carries an IPv4 one (::ffff:169.254.169.254, NAT64, 6to4).

The name is resolved once, at the check, and the SDK client built for the typed URL connects to the address
that was checked (`connect_only_to`): a name that resolves elsewhere a second later (DNS rebinding) is not
followed, nor is a redirect. A name that does not resolve is refused.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2  # the HTTP library the openai and anthropic SDKs are built on

from ...core.errors import UserError

NO_KEY = "not-needed"  # what the SDK sends to a typed URL when no key was typed with it
METADATA_HOSTS = {"metadata", "metadata.google.internal", "metadata.azure.internal", "instance-data"}
METADATA_IPS = {
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
}
# prefixes whose last 32 bits are an IPv4 address the packets end up at (RFC 6052 NAT64, RFC 8215 local NAT64,
# the deprecated IPv4-compatible form)
_EMBEDDING = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96")]
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class TypedTarget:
    """A checked typed URL: its host name and port, and the addresses the check approved (the ones to connect
    to, in the resolver's order)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _addresses_behind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list:
    """The address and every IPv4 address it carries (mapped, NAT64, 6to4, Teredo), for the check."""
    found = [ip]
    if ip.version == 6:
        found += [a for a in (ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())) if a is not None]
        if any(ip in net for net in _EMBEDDING) and int(ip) > 1:  # ::1 and :: are not IPv4-compatible forms
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _refusal(host: str, address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%")[0])
    for behind in _addresses_behind(ip):
        if behind.is_link_local or behind in METADATA_IPS:
            shown = f"{ip}" if behind == ip else f"{ip}, which carries {behind}"
            return f"the base URL {host} points to a link-local or cloud-metadata address ({shown}); refused"
    return None


def check(url: str) -> TypedTarget:
    """The typed URL checked and resolved once: a UserError when it is not http(s), does not resolve, or any of
    its addresses is link-local or cloud metadata."""
    url = (url or "").strip()
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:
        port = 0
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or not port:
        raise UserError(f"the base URL must look like http://HOST:PORT/v1, got {url!r}")
    host = parts.hostname.lower().rstrip(".")
    if host in METADATA_HOSTS:
        raise UserError(f"the base URL {host} is a cloud-metadata address; refused")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError):
        infos = []
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UserError(
            f"the base URL's host {host} does not resolve on the server; refused (type an address, or "
            "a name the server resolves)"
        )
    for address in addresses:
        refusal = _refusal(host, address)
        if refusal:
            raise UserError(refusal)
    return TypedTarget(url, parts.scheme, host, port, tuple(addresses))


def check_typed_url(url: str) -> str:
    """The URL, stripped; a UserError when `check` refuses it."""
    return check(url).url


def typed_key(api_key: str | None) -> str:
    """The key for a typed URL: the one typed with it, never one from the server's environment."""
    return (api_key or "").strip() or NO_KEY


_TARGET: contextvars.ContextVar[TypedTarget | None] = contextvars.ContextVar("typed_url_target", default=None)


@contextlib.contextmanager
def connect_only_to(target: TypedTarget | None):
    """While the judge for a typed URL is built: every SDK client made here (`http_client`) is pinned to it."""
    token = _TARGET.set(target)
    try:
        yield
    finally:
        _TARGET.reset(token)


def http_client(timeout: float) -> httpx2.Client | None:
    """The HTTP client for an SDK built inside `connect_only_to`, else None (the SDK's own client)."""
    target = _TARGET.get()
    if target is None:
        return None
    # no redirects; trust_env off: no proxy from the environment (the proxy would resolve the name itself)
    return httpx2.Client(transport=PinnedTransport(target), follow_redirects=False, trust_env=False, timeout=timeout)


class PinnedTransport(httpx2.BaseTransport):
    """Sends each request to the checked address. The URL keeps the name, so the Host header, the TLS server name
    and the certificate check are the name's; only the TCP connection goes to the checked IP."""

    def __init__(self, target: TypedTarget):
        self._target = target
        self._inner = httpx2.HTTPTransport()  # its trust_env is only SSL_CERT_FILE / SSL_CERT_DIR, as before

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        url, target = request.url, self._target
        origin = (url.scheme, (url.host or "").lower().rstrip("."), url.port or _DEFAULT_PORTS.get(url.scheme))
        if origin != (target.scheme, target.host, target.port):
            raise httpx2.ConnectError(
                f"only {target.host}:{target.port} may be reached from this client", request=request
            )
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = target.host
        for index, address in enumerate(target.addresses):  # each checked address in turn, as a resolver's list
            pinned = httpx2.Request(
                request.method,
                url.copy_with(host=address),
                headers=request.headers,
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return self._inner.handle_request(pinned)
            except httpx2.ConnectError:
                if index == len(target.addresses) - 1:
                    raise
        raise AssertionError("a checked target has at least one address")

    def close(self) -> None:
        self._inner.close()
