"""Base URLs typed in the browser: checked before any request, and never sent the server's own keys.

Anyone who can open the app can type a URL. A key from the server's environment (OPENAI_API_KEY, ...) goes
only to endpoints the operator configured at start-up (the SDKs' own endpoints, ALIGNSTUDIO_JUDGE_BASE_URL);
a typed URL gets the key typed in the same form, or none. Link-local and cloud-metadata addresses are refused
(the classic server-side request forgery target), whatever the host name resolves to.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ...core.errors import UserError

NO_KEY = "not-needed"  # what the SDK sends to a typed URL when no key was typed with it
METADATA_HOSTS = {"metadata", "metadata.google.internal", "metadata.azure.internal", "instance-data"}
METADATA_IPS = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254",
                                                  "100.100.100.200")}


def check_typed_url(url: str) -> str:
    """The URL, stripped; a UserError when it is not http(s) or points at a link-local or metadata address."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"the base URL must look like http://HOST:PORT/v1, got {url!r}")
    host = parts.hostname.lower().rstrip(".")
    if host in METADATA_HOSTS:
        raise UserError(f"the base URL {host} is a cloud-metadata address; refused")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError, ValueError):
        return url  # unresolvable here: the SDK's call fails with its own error, and no key goes with it
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_link_local or ip in METADATA_IPS:
            raise UserError(f"the base URL {host} points to a link-local or cloud-metadata address ({ip}); refused")
    return url


def typed_key(api_key: str | None) -> str:
    """The key for a typed URL: the one typed with it, never one from the server's environment."""
    return (api_key or "").strip() or NO_KEY
