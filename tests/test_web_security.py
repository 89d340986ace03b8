"""The app served to a team: no other site reads a session, cookies and headers as a browser needs them, logout
is a POST, X-Forwarded-For only from a named proxy, and a spray from a shared address does not lock owners out.
The real app runs in a subprocess (TLS with a self-signed certificate for studio.test); Chromium maps the names
studio.test and evil.test to 127.0.0.1."""

import http.server
import threading
from contextlib import contextmanager

import httpx
import pytest
from servers import BROWSER_ARGS, free_port, running_app, self_signed_certificate

from alignstudio.services.auth import hash_password

FRIEND = "https://friend.test"  # the one origin --allowed-origins lets in
DEVICE = "alignstudio-device"


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "users.txt"
    path.write_text(f"admin1:{hash_password('admin-password')}:admin\nann:{hash_password('ann-password')}:annotator\n")
    return path


@pytest.fixture(scope="module")
def tls_app(tmp_path_factory, tiny_model_dir, users):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_certificate(folder, "studio.test", "DNS:studio.test,IP:127.0.0.1")
    with running_app(
        folder / "ws",
        tiny_model_dir,
        "--auth",
        str(users),
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        "--allowed-origins",
        FRIEND,
    ) as (_, url):
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        yield url, port


def _client(url: str, port: int) -> httpx.Client:
    """A client that talks to the app on 127.0.0.1 as if it were https://studio.test:PORT (a real deployment's Host)."""
    return httpx.Client(base_url=url, verify=False, timeout=60, headers={"Host": f"studio.test:{port}"})


def _login(client: httpx.Client, name: str, password: str, **headers) -> httpx.Response:
    return client.post("/login", data={"username": name, "password": password}, headers=headers)


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


def test_other_origins_get_no_credentialed_answer_and_listed_ones_do(tls_app):
    url, port = tls_app
    with _client(url, port) as client:
        assert _login(client, "admin1", "admin-password").status_code == 200
        own = client.get("/gradio_api/token", headers={"Origin": f"https://studio.test:{port}"})
        assert own.status_code == 200 and own.json()["user"] == "admin1"  # the session works: a real check

        for evil in ("https://evil.test", "null", f"https://studio.test:{port + 1}", "https://studio.test.evil.test"):
            answer = client.get("/gradio_api/token", headers={"Origin": evil})
            assert answer.status_code == 403 and "token" not in answer.text, evil
            assert "access-control-allow-origin" not in answer.headers, evil
            preflight = client.options(
                "/gradio_api/token", headers={"Origin": evil, "Access-Control-Request-Method": "GET"}
            )
            assert "access-control-allow-origin" not in preflight.headers, evil
            assert "access-control-allow-credentials" not in preflight.headers, evil
        # a form posted from another site (login CSRF) is refused too
        assert (
            _login(
                httpx.Client(base_url=url, verify=False, headers={"Host": f"studio.test:{port}"}),
                "ann",
                "ann-password",
                Origin="https://evil.test",
            ).status_code
            == 403
        )

        # a listed origin calls the app with the user's login (/config is 401 without it) ...
        friend = client.get("/config", headers={"Origin": FRIEND})
        assert friend.status_code == 200 and "components" in friend.json()
        assert friend.headers["access-control-allow-origin"] == FRIEND
        assert friend.headers["access-control-allow-credentials"] == "true"
        preflight = client.options("/config", headers={"Origin": FRIEND, "Access-Control-Request-Method": "GET"})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == FRIEND
        assert httpx.get(url + "config", verify=False, headers={"Host": f"studio.test:{port}"}).status_code == 401
        # ... but never reads the session token itself
        token = client.get("/gradio_api/token", headers={"Origin": FRIEND})
        assert token.status_code == 403 and "access-control-allow-origin" not in token.headers


def test_cookies_are_samesite_lax_secure_and_set_once_under_tls(tls_app):
    url, port = tls_app
    with _client(url, port) as client:
        response = _login(client, "ann", "ann-password")
    assert response.status_code == 200
    cookies = _set_cookies(response)
    [session] = [value for name, value in cookies.items() if name.startswith("access-token")]
    attributes = [a.strip().lower() for a in session.split(";")]
    assert "samesite=lax" in attributes and "secure" in attributes and "httponly" in attributes, session
    assert not any(name.startswith("access-token-unsecure") for name in cookies)  # no copy without Secure
    device = [a.strip().lower() for a in cookies[DEVICE].split(";")]
    assert {"samesite=strict", "secure", "httponly", "path=/login"} <= set(device)
    assert "samesite=none" not in " ".join(response.headers.get_list("set-cookie")).lower()


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "SAMEORIGIN",
}


def _check_headers(response: httpx.Response, tls: bool) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)
    assert "frame-ancestors 'self'" in response.headers["content-security-policy"]
    assert ("strict-transport-security" in response.headers) == tls, response.url


def test_security_headers_on_pages_and_api_and_hsts_only_under_tls(tls_app, tmp_path, tiny_model_dir, users):
    url, port = tls_app
    with _client(url, port) as client:
        _check_headers(client.get("/"), tls=True)  # the login page
        assert _login(client, "admin1", "admin-password").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        _check_headers(page, tls=True)
        _check_headers(client.get("/config"), tls=True)
        _check_headers(client.get("/gradio_api/token"), tls=True)
        assert client.get("/gradio_api/token").headers["strict-transport-security"].startswith("max-age=")
    with (
        running_app(tmp_path / "ws", tiny_model_dir, "--auth", str(users)) as (_, plain),
        httpx.Client(base_url=plain, timeout=60) as client,
    ):
        _check_headers(client.get("/"), tls=False)
        login = _login(client, "admin1", "admin-password")
        _check_headers(login, tls=False)
        assert "samesite=none" not in " ".join(login.headers.get_list("set-cookie")).lower()


def test_logout_is_a_post_from_the_app_itself(tls_app):
    url, port = tls_app
    with _client(url, port) as client:
        assert _login(client, "ann", "ann-password").status_code == 200
        assert client.get("/config").status_code == 200
        assert client.get("/logout").status_code == 405  # a link or an <img> elsewhere cannot log anyone out
        assert client.get("/logout?all_session=true").status_code == 405
        assert client.post("/logout", headers={"Origin": "https://evil.test"}).status_code == 403
        assert client.get("/config").status_code == 200  # still signed in
        out = client.post("/logout", headers={"Origin": f"https://studio.test:{port}"})
        assert out.status_code in (200, 302), out.text
        for name, value in _set_cookies(out).items():
            assert "max-age=0" in value.lower(), name  # Gradio's route ran: the cookies are deleted
        assert client.get("/config").status_code == 401
    with _client(url, port) as client:  # the old token no longer opens the app
        cookie = next(
            v for n, v in _set_cookies(_login(client, "ann", "ann-password")).items() if n.startswith("access-token")
        )
        token = cookie.split(";")[0]
        client.cookies.clear()
        assert client.get("/config", headers={"Cookie": token}).status_code == 200
        client.post("/logout", headers={"Cookie": token})
        assert client.get("/config", headers={"Cookie": token}).status_code == 401


def _spray(url: str, addresses, names) -> list[int]:
    """Wrong passwords, one per (address, name), each claiming to come from `address` via X-Forwarded-For."""
    with httpx.Client(base_url=url, timeout=60) as client:
        return [
            _login(client, name, "wrong-password", **{"X-Forwarded-For": address}).status_code
            for address, name in zip(addresses, names)
        ]


def test_forwarded_for_is_ignored_and_a_spray_does_not_lock_out_a_known_browser(tmp_path, tiny_model_dir, users):
    with running_app(tmp_path / "ws", tiny_model_dir, "--auth", str(users)) as (_, url):
        ann_browser = httpx.Client(base_url=url, timeout=60)
        assert _login(ann_browser, "ann", "ann-password").status_code == 200  # ann has signed in here before
        assert DEVICE in ann_browser.cookies
        assert "strict-transport-security" not in httpx.get(url, headers={"X-Forwarded-Proto": "https"}).headers
        # 24 guesses, each claiming another address: they all count against 127.0.0.1, which allows 20
        statuses = _spray(url, [f"10.0.0.{i}" for i in range(24)], [f"eve{i}" for i in range(24)])
        assert statuses == [400] * 20 + [429] * 4, statuses
        with httpx.Client(base_url=url, timeout=60) as stranger:
            assert _login(stranger, "ann", "ann-password").status_code == 429  # the address throttle, unasked
            assert _login(stranger, "admin1", "admin-password").status_code == 429
            stranger.cookies.set(DEVICE, ann_browser.cookies[DEVICE], path="/login")
            assert _login(stranger, "admin1", "admin-password").status_code == 429  # ann's device is not admin1's
        assert _login(ann_browser, "ann", "wrong-password").status_code == 400  # checked, counted on ann only
        assert _login(ann_browser, "ann", "ann-password").status_code == 200  # the owner's browser gets in
        forged = httpx.Client(base_url=url, timeout=60)
        forged.cookies.set(DEVICE, "ann.1.00", path="/login")
        assert _login(forged, "ann", "ann-password").status_code == 429


def test_forwarded_for_is_read_from_a_trusted_proxy(tmp_path, tiny_model_dir, users):
    with running_app(tmp_path / "ws", tiny_model_dir, "--auth", str(users), "--trusted-proxy", "127.0.0.1") as (_, url):
        statuses = _spray(url, [f"10.0.0.{i}" for i in range(24)], [f"eve{i}" for i in range(24)])
        assert statuses == [400] * 24, statuses  # 24 clients behind the proxy, each far below its limit
        statuses = _spray(url, ["10.9.9.9"] * 21, [f"mallory{i}" for i in range(21)])
        assert statuses == [400] * 20 + [429], statuses  # one client behind the proxy: its own limit
        assert _spray(url, ["10.9.9.10"], ["mallory"]) == [400]
        # the proxy's X-Forwarded-Proto is believed too: TLS at the proxy gets HSTS and Secure cookies
        behind_tls = httpx.get(url, headers={"X-Forwarded-Proto": "https"}, timeout=60)
        assert "strict-transport-security" in behind_tls.headers


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):
        body = f"""<!doctype html><title>evil</title><script>
        (async () => {{
          const result = {{}};
          try {{
            const r = await fetch({self.target!r} + 'gradio_api/token', {{credentials: 'include'}});
            result.read = await r.text();
          }} catch (e) {{ result.error = String(e); }}
          try {{  // the app is reachable from here: only the reading is refused
            await fetch({self.target!r} + 'gradio_api/token', {{credentials: 'include', mode: 'no-cors'}});
            result.reachable = true;
          }} catch (e) {{ result.reachable = false; }}
          window.stolen = result;
        }})();
        </script>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def _attacker_site(target: str):
    handler = type("Handler", (_AttackerPage,), {"target": target})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://evil.test:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _chromium():
    """A normal (not incognito) profile that allows third-party cookies, as Chrome's default does: the attack
    then has the user's session cookie to send (without the preference this Chromium blocks them)."""
    import json
    import tempfile
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    args = BROWSER_ARGS + [
        "--host-resolver-rules=MAP studio.test 127.0.0.1, MAP evil.test 127.0.0.1",
        "--ignore-certificate-errors",
    ]
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        (Path(profile) / "Default").mkdir()
        (Path(profile) / "Default" / "Preferences").write_text(
            json.dumps({"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}})
        )
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            args=args,
            headless=True,
            ignore_https_errors=True,
            viewport={"width": 1300, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.mark.browser
def test_a_page_on_another_site_cannot_read_the_session_in_chromium(tls_app):
    _, port = tls_app
    app = f"https://studio.test:{port}/"
    with _chromium() as context, _attacker_site(app) as evil:
        page = context.pages[0] if context.pages else context.new_page()
        blocked = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(app)
        page.fill("input[type=text], input[name=username]", "admin1")
        page.fill("input[type=password]", "admin-password")
        page.keyboard.press("Enter")
        # the app works under its CSP: it loads, shows a pair, takes a label, and every tab opens
        page.wait_for_function(
            "(document.querySelector('#label-prompt')?.innerText || '').includes('Prompt')", timeout=90_000
        )
        page.click("#label-left-better")
        page.wait_for_function(
            "(document.querySelector('#label-status')?.innerText || '').includes('A is better')", timeout=60_000
        )
        for tab in ("Feedback", "Data", "Validate", "Train", "Evaluate", "Arena", "Rounds", "Label"):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(1500)
        own = page.evaluate("fetch('/gradio_api/token').then(r => r.json())")
        assert own["user"] == "admin1" and own["token"]  # the app's own page reads it: the session is there
        assert not blocked, blocked
        # the listener does hear the CSP: an image from elsewhere (say, in model output) is not fetched
        page.evaluate("document.body.appendChild(Object.assign(new Image(), {src: 'https://img.evil.test/x.png'}))")
        page.wait_for_timeout(500)
        assert len(blocked) == 1 and "img-src" in blocked[0], blocked

        page.goto(evil)
        page.wait_for_function("window.stolen !== undefined", timeout=30_000)
        stolen = page.evaluate("window.stolen")
        assert stolen["reachable"] is True, stolen
        assert "read" not in stolen and "Failed to fetch" in stolen["error"], stolen
        assert own["token"] not in str(stolen)
