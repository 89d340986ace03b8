"""Access: hashed accounts, identity from the login, loopback by default, no file route to private data."""

import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from gradio_client import Client

from alignstudio.core.errors import UserError
from alignstudio.core.store import Store
from alignstudio.services.auth import Accounts, hash_password, parse_users
from servers import ROOT, running_app



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
    accounts = Accounts({"ann": encoded})
    assert accounts.verify("ann", "correct horse battery")
    assert not accounts.verify("ann", "wrong password") and not accounts.verify("eve", "correct horse battery")
    with pytest.raises(UserError, match="at least 8"):
        hash_password("short")
    with pytest.raises(UserError, match="expected NAME:pbkdf2"):
        parse_users("ann:plaintextpassword", "users.txt")


def test_users_cli_writes_a_hashed_file(tmp_path):
    users = tmp_path / "users.txt"
    result = subprocess.run([sys.executable, "-m", "alignstudio", "users", "add", str(users), "alice",
                             "--password-stdin"], input="s3cret-passw0rd\n", cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert "s3cret" not in users.read_text()
    assert Accounts.load(str(users)).verify("alice", "s3cret-passw0rd")


def test_login_required_and_labels_belong_to_the_login(tmp_path, tiny_model_dir):
    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hash_password('alice-password')}\n")
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir, "--auth", str(users)) as (_, url):
        assert _status(url + "config") == 401
        with pytest.raises(Exception):
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
        targets = [store, workspace / "store.sqlite-wal", workspace / "models", ROOT / "app.py",
                   ROOT / "README.md"]
        for target in targets:
            for route in ("gradio_api/file=", "file=", "gradio_api/file/"):
                assert _status(url + route + urllib.parse.quote(str(target))) != 200, (route, target)
        assert _status(url + "gradio_api/file=" + urllib.parse.quote("../" * 8 + str(store))) != 200


def _login(url: str, user: str, password: str) -> str | None:
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
        private = {"runs/r1/spec.json": "{}", "models/m1/config.json": "{}", "snapshots/s1/data.arrow": "rows",
                   "prompt_sets/p.jsonl": "{}", "judge_cache/judge.sqlite": "cache", "evals/e1/report.json": "{}",
                   "rounds/r1/round.json": "{}"}
        for name, text in private.items():
            (workspace / name).parent.mkdir(parents=True, exist_ok=True)
            (workspace / name).write_text(text)
        targets = [workspace / name for name in private]
        targets += [workspace / n for n in ("store.sqlite", "store.sqlite-wal", "store.sqlite-shm",
                                            "store.sqlite.writelock") if (workspace / n).exists()]
        assert workspace / "store.sqlite" in targets and workspace / "store.sqlite-wal" in targets
        targets += [workspace / "exports" / ".." / "store.sqlite", ROOT / "app.py"]  # a detour; the code

        export = workspace / "exports" / "shared.jsonl"
        routes = ("gradio_api/file=", "file=", "gradio_api/file/")
        assert _fetch(url + routes[0] + urllib.parse.quote(str(export), safe=""), None)[0] == 401
        assert _login(url, "bob", "alice-password") is None
        cookie = _login(url, "bob", "bob-password")
        assert cookie
        status, body = _fetch(url + routes[0] + urllib.parse.quote(str(export), safe=""), cookie)
        assert (status, body) == (200, export.read_bytes())  # the session and the route work: a real check
        for target in targets:
            for route in routes:
                status, body = _fetch(url + route + urllib.parse.quote(str(target), safe=""), cookie)
                assert status != 200, (route, target, body[:80])
