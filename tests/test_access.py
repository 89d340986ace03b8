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
from alignstudio.services.auth import ROLES, Account, Accounts, hash_password, parse_users
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
    accounts = Accounts({"ann": Account(encoded)})
    assert accounts.verify("ann", "correct horse battery")
    assert not accounts.verify("ann", "wrong password") and not accounts.verify("eve", "correct horse battery")
    with pytest.raises(UserError, match="at least 8"):
        hash_password("short")
    with pytest.raises(UserError, match="expected NAME:pbkdf2"):
        parse_users("ann:plaintextpassword", "users.txt")


def _users_add(users, name, *flags, password="s3cret-passw0rd"):
    return subprocess.run([sys.executable, "-m", "alignstudio", "users", "add", str(users), name,
                           "--password-stdin", *flags], input=password + "\n", cwd=ROOT, capture_output=True,
                          text=True)


def test_users_cli_writes_a_hashed_file_with_roles(tmp_path):
    users = tmp_path / "users.txt"
    for name, flags in (("alice", ()), ("root", ("--role", "admin"))):
        result = _users_add(users, name, *flags)
        assert result.returncode == 0, result.stderr
    assert "s3cret" not in users.read_text()
    accounts = Accounts.load(str(users))
    assert accounts.verify("alice", "s3cret-passw0rd")
    assert (accounts.role("alice"), accounts.role("root")) == ("annotator", "admin")
    bad = _users_add(users, "mallory", "--role", "owner")
    assert bad.returncode != 0 and "invalid choice: 'owner'" in bad.stderr


def test_roles_are_read_from_files_and_env_and_old_lines_are_admins(tmp_path, monkeypatch):
    encoded = hash_password("correct horse battery")
    text = f"old:{encoded}\nann:{encoded}:annotator\nboss:{encoded}:admin\n"
    users = tmp_path / "users.txt"
    users.write_text(text)
    monkeypatch.setenv("ALIGNSTUDIO_USERS", text.replace("\n", ","))
    for accounts in (Accounts.load(str(users)), Accounts.load("env")):
        assert {name: accounts.role(name) for name in accounts.names()} == \
            {"old": "admin", "ann": "annotator", "boss": "admin"}
        assert accounts.verify("ann", "correct horse battery")
    assert set(ROLES) == {"admin", "annotator"}
    with pytest.raises(UserError, match="users.txt, entry 1: unknown role 'owner'"):
        parse_users(f"eve:{encoded}:owner", "users.txt")
    with pytest.raises(UserError, match="no account named 'eve'"):
        Accounts.load(str(users)).role("eve")


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe junk", "not valid UTF-8"),
    (b"ann:pbkdf2_sha256$999999999$00$00", "expected NAME:pbkdf2_sha256"),
    (b"#" * (1 << 20) + b"\n", "too big for a users file"),
])
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
        with pytest.raises(Exception):
            Client(url, auth=("alice", "not-her-password"), verbose=False)
        client = Client(url, auth=("alice", "alice-password"), verbose=False)
        client.predict("mallory", *config(tiny_model_dir), api_name="/label_first_pair")
        client.predict("mallory", "", *config(tiny_model_dir), api_name="/label_left")
    [label] = Store(workspace / "store.sqlite").labels()
    assert label.annotator == "alice"


def test_private_workspace_files_cannot_be_fetched(tmp_path, tiny_model_dir):
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
