"""A real browser gives thumbs up and down on two responses; both are in the KTO export."""

import json
import subprocess
import sys

import pytest
from servers import ROOT, browser_page, running_app

from alignstudio.core.store import Store

pytestmark = pytest.mark.browser


def _status_has(page, needle: str) -> None:
    page.wait_for_function(
        f"(document.querySelector('#feedback-status')?.innerText || '').includes({needle!r})", timeout=60_000
    )


def test_thumbs_up_and_down_reach_the_kto_export(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        page.goto(url)
        page.fill("#annotator textarea, #annotator input", "bob")
        page.get_by_role("tab", name="Feedback").click()
        _status_has(page, "0 ratings by")
        page.click("#feedback-up")
        # acknowledged, and the acknowledgement stays beside the next response (prefetched, it comes at once)
        _status_has(page, "Last: good · 1 ratings by bob")
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.wait_for_timeout(400)  # reading it: a press within 300 ms of the last is taken as a double press
        page.keyboard.press("-")  # thumbs down by keyboard
        _status_has(page, "Last: bad · 2 ratings by bob")

    store = Store(workspace / "store.sqlite")
    rows = store.feedback_rows()
    assert [r["verdict"] for r in rows] == ["up", "down"] and {r["annotator"] for r in rows} == {"bob"}
    out = tmp_path / "kto.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alignstudio",
            "--workspace",
            str(workspace),
            "export",
            "--kind",
            "kto",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["label"] for e in exported] == [True, False]
    assert [e["completion"][0]["content"] for e in exported] == [r["text"] for r in rows]
