"""Starting the real app, the CLI or any server as a subprocess for tests: loopback only, and it dies with us."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, workspace=None):
    """`alignstudio ARGS` as a user runs it: a real subprocess in the repository root."""
    ws = ["--workspace", str(workspace)] if workspace else []
    return subprocess.run(
        [sys.executable, "-m", "alignstudio", *ws, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the server gets SIGTERM if the test process dies, so none outlives the suite
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def start_app(
    workspace: Path, model: Path | str, *extra: str, log: Path | None = None, env: dict | None = None
) -> tuple[subprocess.Popen, str]:
    """`env`: extra environment variables for the app (e.g. LD_PRELOAD for the crash simulation)."""
    port = free_port()
    log = log or workspace.parent / f"app-{port}.log"
    env = (
        os.environ | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"} | (env or {})
    )
    handle = open(log, "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "--workspace",
            str(workspace),
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    https = "--ssl-certfile" in extra
    url = f"{'https' if https else 'http'}://127.0.0.1:{port}/"
    context = ssl._create_unverified_context() if https else None  # tests' certificates are self-signed
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2, context=context)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"app did not start: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_app(workspace: Path, model, *extra: str, env: dict | None = None):
    proc, url = start_app(workspace, model, *extra, env=env)
    try:
        yield proc, url
    finally:
        stop(proc)


@contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()


def dropdown_options(page, elem_id: str) -> list[str]:
    """The options a dropdown offers, as a person sees them when opening it; none when it does not open in time
    (a click while the tab's refresh re-renders the list can miss it: `offered` asks again). The list opens on
    focus, so the input is left unfocused: a second look opens it again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.click(f"#{elem_id} input")
    try:
        page.wait_for_selector(f"#{elem_id} ul li", timeout=10_000)
        return page.eval_on_selector_all(
            f"#{elem_id} ul li",  # an option's text, without the tick mark
            "items => items.map(i => i.innerText.trim().split('\\n').pop())",
        )
    except PlaywrightTimeout:
        return []
    finally:
        page.keyboard.press("Escape")
        page.evaluate("document.activeElement?.blur()")


def offered(page, elem_id: str, name: str, timeout_s: float = 20.0) -> bool:
    """Whether the dropdown offers `name` within the timeout (the tab's refresh is an event of its own)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if any(name in option for option in dropdown_options(page, elem_id)):
            return True
        page.wait_for_timeout(500)
    return False


def start_run_in_browser(page, data: Path, model: Path, *, max_steps: int, name: str) -> None:
    """On the Train tab: a LoRA DPO run on a data file, as a user fills the form, then Start."""
    page.click("#train-data-kind label:has-text('File')")
    page.fill("#train-data-file textarea, #train-data-file input", str(data))
    page.fill("#train-model input", str(model))
    page.keyboard.press("Enter")
    page.fill("#train-max-steps textarea, #train-max-steps input", str(max_steps))
    page.fill("#train-max-length input", "64")
    page.fill("#train-lr textarea, #train-lr input", "0.001")
    page.fill("#train-name textarea, #train-name input", name)
    page.click("#train-start")


def self_signed_certificate(folder: Path, common_name: str, alt_names: str) -> tuple[Path, Path]:
    """(certificate, key) PEM files for a test server, made by openssl: `alt_names` is the subjectAltName value,
    e.g. "DNS:studio.test,IP:127.0.0.1"."""
    cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={common_name}",
            "-addext",
            f"subjectAltName={alt_names}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
