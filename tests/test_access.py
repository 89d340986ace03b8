"""Access: hashed accounts, identity from the login, loopback by default, no file route to private data."""

import asyncio
import inspect
import io
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import httpx
import pytest
from gradio_client import Client
from servers import ROOT, running_app, self_signed_certificate

from alignstudio.cli import main as cli_main
from alignstudio.core.errors import UserError
from alignstudio.core.store import Store
from alignstudio.services.auth import ROLES, Account, Accounts, hash_password, parse_users
from alignstudio.services.logins import Backoff, LoginThrottle, SessionTokens, SignIn, TrustedDevices, attempts_within
from alignstudio.ui import login


def config(model) -> list:
    """Values of the Label tab's sampling controls: prompt set, models A/B, temperatures, top_p, tokens, seed."""
    return ["fresh samples", "default", str(model), "(same as A)", 0.7, 1.0, 0.95, 8, None]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_password_hashes_verify_and_never_hold_the_password():
    encoded = hash_password("correct horse battery")
    assert "correct" not in encoded and encoded.startswith("pbkdf2_sha256$")
    accounts = Accounts({"ann": Account(encoded)})
    assert accounts.verify("ann", "correct horse battery")
    assert not accounts.verify("ann", "wrong password") and not accounts.verify("eve", "correct horse battery")
    with pytest.raises(UserError, match="at least 8"):
        hash_password("short")
    with pytest.raises(UserError, match="expected NAME:pbkdf2"):
        parse_users("ann:plaintextpassword", "users.txt")


def test_users_cli_writes_a_hashed_file_with_roles(tmp_path, monkeypatch, capsys):
    users = tmp_path / "users.txt"
    result = subprocess.run(
        [sys.executable, "-m", "alignstudio", "users", "add", str(users), "alice", "--password-stdin"],
        input="s3cret-passw0rd\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    monkeypatch.setattr("sys.stdin", io.StringIO("r00t-passw0rd\n"))  # the same CLI, in-process (faster)
    assert cli_main(["users", "add", str(users), "root", "--role", "admin", "--password-stdin"]) == 0
    assert "s3cret" not in users.read_text()
    accounts = Accounts.load(str(users))
    assert accounts.verify("alice", "s3cret-passw0rd") and accounts.verify("root", "r00t-passw0rd")
    assert (accounts.role("alice"), accounts.role("root")) == ("annotator", "admin")
    with pytest.raises(SystemExit):
        cli_main(["users", "add", str(users), "mallory", "--role", "owner", "--password-stdin"])
    assert "invalid choice: 'owner'" in capsys.readouterr().err
    piped = subprocess.run(
        [sys.executable, "-m", "alignstudio", "users", "add", str(users), "bob"],
        input="",
        cwd=ROOT,
        capture_output=True,
        text=True,
    )  # no terminal, no --password-stdin
    assert piped.returncode == 2 and "add --password-stdin" in piped.stderr and "Traceback" not in piped.stderr
    assert "bob" not in users.read_text()


def test_roles_are_read_from_files_and_env_and_old_lines_are_admins(tmp_path, monkeypatch):
    encoded = hash_password("correct horse battery")
    text = f"old:{encoded}\nann:{encoded}:annotator\nboss:{encoded}:admin\n"
    users = tmp_path / "users.txt"
    users.write_text(text)
    monkeypatch.setenv("ALIGNSTUDIO_USERS", text.replace("\n", ","))
    for accounts in (Accounts.load(str(users)), Accounts.load("env")):
        assert {name: accounts.role(name) for name in accounts.names()} == {
            "old": "admin",
            "ann": "annotator",
            "boss": "admin",
        }
        assert accounts.verify("ann", "correct horse battery")
    assert set(ROLES) == {"admin", "annotator"}
    with pytest.raises(UserError, match="users.txt, entry 1: unknown role 'owner'"):
        parse_users(f"eve:{encoded}:owner", "users.txt")
    with pytest.raises(UserError, match="no account named 'eve'"):
        Accounts.load(str(users)).role("eve")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe junk", "not valid UTF-8"),
        (b"ann:pbkdf2_sha256$999999999$00$00", "expected NAME:pbkdf2_sha256"),
        (b"#" * (1 << 20) + b"\n", "too big for a users file"),
    ],
)
def test_bad_users_files_are_one_clear_error(tmp_path, content, message):
    users = tmp_path / "users.txt"
    users.write_bytes(content)
    with pytest.raises(UserError, match=message):
        Accounts.load(str(users))


def test_login_required_and_labels_belong_to_the_login(tmp_path, tiny_model_dir):
    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hash_password('alice-password')}\n")
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir, "--auth", str(users)) as (_, url):
        assert _status(url + "config") == 401
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("alice", "not-her-password"), verbose=False)
        client = Client(url, auth=("alice", "alice-password"), verbose=False)
        client.predict("mallory", *config(tiny_model_dir), api_name="/label_first_pair")
        client.predict("mallory", "", *config(tiny_model_dir), api_name="/label_left")
    [label] = Store(workspace / "store.sqlite").labels()
    assert label.annotator == "alice"


def test_private_workspace_files_cannot_be_fetched(tmp_path, tiny_model_dir):
    # the default set-up: Gradio serves no workspace path at all, so this passes even without the blocked paths;
    # test_a_logged_in_user_cannot_fetch_private_workspace_files is the one that pins them
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir) as (_, url):
        store = workspace / "store.sqlite"
        assert store.exists()
        targets = [store, workspace / "store.sqlite-wal", workspace / "models", ROOT / "app.py", ROOT / "README.md"]
        for target in targets:
            for route in ("gradio_api/file=", "file=", "gradio_api/file/"):
                assert _status(url + route + urllib.parse.quote(str(target))) != 200, (route, target)
        assert _status(url + "gradio_api/file=" + urllib.parse.quote("../" * 8 + str(store))) != 200


def _session_cookie(url: str, user: str, password: str) -> str | None:
    """Gradio's login form, as the browser posts it; the session cookie as a Cookie header, or None when refused.
    The cookie is marked Secure, so an http client would not send it back by itself: it is passed by hand."""
    import httpx

    response = httpx.post(url + "login", data={"username": user, "password": password}, timeout=30)
    if response.status_code != 200 or not response.json().get("success"):
        return None
    return "; ".join(f"{name}={value}" for name, value in response.cookies.items())


def _fetch(url: str, cookie: str | None) -> tuple[int, bytes]:
    import httpx

    response = httpx.get(url, headers={"Cookie": cookie} if cookie else {}, timeout=30)
    return response.status_code, response.content


def test_a_logged_in_user_cannot_fetch_private_workspace_files(tmp_path, tiny_model_dir):
    """Logged in (else every route is 401 anyway), with the operator letting Gradio serve the workspace
    (GRADIO_ALLOWED_PATHS, e.g. to link exports): exports come back, the store, runs and models do not."""
    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hash_password('alice-password')}\nbob:{hash_password('bob-password')}\n")
    workspace = tmp_path / "ws"
    (workspace / "exports").mkdir(parents=True)
    (workspace / "exports" / "shared.jsonl").write_text('{"ok": true}\n')
    env = {"GRADIO_ALLOWED_PATHS": str(workspace)}
    with running_app(workspace, tiny_model_dir, "--auth", str(users), env=env) as (_, url):
        private = {
            "runs/r1/spec.json": "{}",
            "models/m1/config.json": "{}",
            "snapshots/s1/data.arrow": "rows",
            "prompt_sets/p.jsonl": "{}",
            "judge_cache/judge.sqlite": "cache",
            "evals/e1/report.json": "{}",
            "rounds/r1/round.json": "{}",
            "live/s1/labels.jsonl": "{}",
        }
        for name, text in private.items():
            (workspace / name).parent.mkdir(parents=True, exist_ok=True)
            (workspace / name).write_text(text)
        targets = [workspace / name for name in private]
        targets += [
            workspace / n
            for n in ("store.sqlite", "store.sqlite-wal", "store.sqlite-shm", "store.sqlite.writelock")
            if (workspace / n).exists()
        ]
        assert workspace / "store.sqlite" in targets and workspace / "store.sqlite-wal" in targets
        targets += [workspace / "exports" / ".." / "store.sqlite", ROOT / "app.py"]  # a detour; the code

        export = workspace / "exports" / "shared.jsonl"
        routes = ("gradio_api/file=", "file=", "gradio_api/file/")
        assert _fetch(url + routes[0] + urllib.parse.quote(str(export), safe=""), None)[0] == 401
        assert _session_cookie(url, "bob", "alice-password") is None
        cookie = _session_cookie(url, "bob", "bob-password")
        assert cookie
        status, body = _fetch(url + routes[0] + urllib.parse.quote(str(export), safe=""), cookie)
        assert (status, body) == (200, export.read_bytes())  # the session and the route work: a real check
        for target in targets:
            for route in routes:
                status, body = _fetch(url + route + urllib.parse.quote(str(target), safe=""), cookie)
                assert status != 200, (route, target, body[:80])


def _login(url: str, name: str, password: str, client: httpx.Client | None = None) -> httpx.Response:
    return (client or httpx).post(url + "login", data={"username": name, "password": password}, timeout=60)


def test_failed_logins_are_throttled_and_sessions_expire(tmp_path, tiny_model_dir):
    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hash_password('alice-password')}\nbob:{hash_password('bob-password')}:annotator\n")
    session_s = 0.003 * 3600
    with running_app(tmp_path / "ws", tiny_model_dir, "--auth", str(users), "--session-hours", "0.003") as (_, url):
        browser = httpx.Client()
        assert _login(url, "alice", "alice-password", browser).status_code == 200
        signed_in = time.monotonic()
        assert browser.get(url + "config").status_code == 200
        # per account: 5 free guesses, then even the right password waits (and is not checked)
        assert [_login(url, "alice", "wrong-password").status_code for _ in range(5)] == [400] * 5
        refused = _login(url, "alice", "alice-password")
        assert refused.status_code == 429 and "try again" in refused.text
        time.sleep(float(refused.headers["Retry-After"]))
        assert _login(url, "alice", "alice-password").status_code == 200
        # per address: 15 more guesses at other names make 20 from this address; then bob must wait too
        assert {_login(url, f"eve{i}", "wrong-password").status_code for i in range(15)} == {400}
        assert _login(url, "bob", "bob-password").status_code == 429
        # the first session ends after --session-hours
        assert browser.get(url + "config").status_code == 200
        time.sleep(max(0.0, signed_in + session_s + 0.5 - time.monotonic()))
        assert browser.get(url + "config").status_code == 401


def test_https_and_the_upload_limit(tmp_path, tiny_model_dir):
    cert, key = self_signed_certificate(tmp_path, "127.0.0.1", "IP:127.0.0.1")
    with running_app(
        tmp_path / "ws", tiny_model_dir, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--max-upload-mb", "1"
    ) as (_, url):
        assert url.startswith("https://")
        client = httpx.Client(verify=str(cert))
        assert client.get(url + "config").status_code == 200

        def upload(size: int) -> httpx.Response:
            return client.post(url + "gradio_api/upload", files=[("files", ("p.jsonl", b"x" * size))])

        assert upload(900_000).status_code == 200
        too_big = upload(1024 * 1024 + 1)
        assert too_big.status_code == 413, too_big.text


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_backs_off_per_account_and_per_address_and_forgets():
    clock = Clock()
    throttle = LoginThrottle(Backoff(free=3, base_s=1, cap_s=8, forget_s=100), Backoff(free=5), clock=clock)
    assert [throttle.begin("alice", "10.0.0.1") for _ in range(3)] == [0, 0, 0]
    assert throttle.begin("alice", "10.0.0.2") == 1  # another address: the account still waits
    clock.now += 1
    assert throttle.begin("alice", "10.0.0.2") == 0
    assert throttle.begin("alice", "10.0.0.2") == 2  # the delay doubles
    assert throttle.begin("bob", "10.0.0.1") == 0
    assert throttle.begin("dave", "10.0.0.1") == 0  # 5th failure from .1: its address limit is reached
    assert throttle.begin("carol", "10.0.0.1") == 1
    throttle.succeeded("bob", "10.0.0.1")  # bob's success takes back only his own attempt
    assert throttle.begin("carol", "10.0.0.1") == 0
    clock.now += 101
    assert throttle.begin("alice", "10.0.0.3") == 0  # no failure for forget_s: forgotten


def test_a_spray_from_a_shared_address_does_not_lock_out_a_browser_that_signed_in_before():
    clock = Clock()
    throttle = LoginThrottle(Backoff(free=3, base_s=1, cap_s=8, forget_s=100), Backoff(free=5), clock=clock)
    devices = TrustedDevices(max_age_s=1000, clock=clock)
    accounts = Accounts(
        {name: Account(hash_password(f"{name}-password", iterations=1000)) for name in ("ann", "admin1")}
    )
    sign_in = SignIn(accounts, throttle, devices)
    assert sign_in.check("ann", "ann-password", "10.0.0.1").ok
    anns = devices.issue("ann")  # what the app sets as her browser's device cookie after that sign-in
    forged = anns[:-1] + ("1" if anns.endswith("0") else "0")
    assert [sign_in.check(f"eve{i}", "guess", "10.0.0.1").ok for i in range(5)] == [False] * 5
    # the address throttle now refuses everyone from 10.0.0.1 without looking at the password, right or wrong
    assert sign_in.check("admin1", "admin1-password", "10.0.0.1").retry_after_s > 0
    assert sign_in.check("ann", "ann-password", "10.0.0.1").retry_after_s > 0
    assert sign_in.check("admin1", "admin1-password", "10.0.0.1", device=anns).retry_after_s > 0  # not his
    assert sign_in.check("ann", "ann-password", "10.0.0.1", device=forged).retry_after_s > 0
    assert sign_in.check("ann", "ann-password", "10.0.0.1", device=anns).ok  # her browser gets in
    # with the device, wrong guesses still count against the account: its throttle stays intact
    results = [sign_in.check("ann", "wrong", "10.0.0.1", device=anns) for _ in range(4)]
    assert [r.retry_after_s > 0 for r in results] == [False, False, False, True]
    assert sign_in.check("ann", "ann-password", "10.0.0.1", device=anns).retry_after_s > 0
    clock.now += 1001  # the device token has expired
    assert devices.holder(anns) is None and devices.holder(devices.issue("ann")) == "ann"
    assert devices.holder(None) is None and devices.holder("ann") is None and devices.holder("a.b.c.d") is None
    assert TrustedDevices(clock=clock).holder(devices.issue("ann")) is None  # another process, another key


def test_attempts_per_minute_an_attacker_gets():
    per_account, per_address = LoginThrottle().per_account, LoginThrottle().per_address
    assert (attempts_within(per_account, 60), attempts_within(per_account, 3600)) == (10, 69)
    assert (attempts_within(per_address, 60), attempts_within(per_address, 3600)) == (25, 84)


def test_sessions_expire():
    clock = Clock()
    tokens = SessionTokens(max_age_s=60, clock=clock)
    tokens["t1"] = "alice"
    clock.now += 30
    tokens["t2"] = "bob"
    assert tokens.get("t1") == "alice" and "t2" in tokens
    clock.now += 31
    tokens["t3"] = "carol"  # each login also sweeps expired ones: memory stays bounded
    assert list(tokens) == ["t2", "t3"]
    assert tokens.get("t1") is None and "t1" not in tokens and tokens.get("t2") == "bob"
    clock.now += 30
    assert tokens.get("t2") is None and "t2" not in tokens and tokens.get("t3") == "carol"


def test_password_checks_leave_the_event_loop_free():
    """Gradio awaits the auth callable only if it is a coroutine function; a plain one would run the 0.1 s
    PBKDF2 on the event loop and stall every other request meanwhile."""
    accounts = Accounts({"ann": Account(hash_password("correct horse battery"))})
    check = login.auth_callable(SignIn(accounts))
    assert inspect.iscoroutinefunction(check)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        assert await check("ann", "correct horse battery")
        task.cancel()
        return ticks - before

    assert asyncio.run(main()) > 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ssl-certfile", "cert.pem"], "--ssl-certfile and --ssl-keyfile go together"),
        (["--ssl-certfile", "nope.pem", "--ssl-keyfile", "nope.key"], "--ssl-certfile: nope.pem does not exist"),
        (["--session-hours", "0"], "--session-hours must be above 0"),
        (["--max-upload-mb", "0"], "--max-upload-mb must be at least 1"),
        (["--allowed-origins", "evil.test"], "--allowed-origins: 'evil.test' is not an origin"),
        (["--allowed-origins", "https://a.test/path"], "is not an origin"),
        (["--trusted-proxy", "*"], "--trusted-proxy: '\\*' is not an IP address or network"),
        (["--trusted-proxy", "proxy.local"], "is not an IP address or network"),
    ],
)
def test_serve_flags_are_checked_before_anything_starts(flags, message):
    import argparse

    from alignstudio.cli import serve

    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    with pytest.raises(UserError, match=message):
        serve._check(parser.parse_args(["serve", *flags]))
