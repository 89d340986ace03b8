"""In Chromium, Shift+1 labels the pair "A is much better": the store keeps the strength, and the key help says so."""

import pytest
from servers import browser_page, running_app

from alignstudio.core.store import Store

pytestmark = pytest.mark.browser


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id}')?.innerText || ''")


def test_shift_1_stores_a_much_better_verdict_for_the_left_response(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        page.goto(url)
        page.wait_for_function(
            "(document.querySelector('#label-prompt')?.innerText || '').includes('Prompt')", timeout=60_000
        )
        page.fill("#annotator textarea, #annotator input", "erin")
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press("?")
        help_text = _text(page, "key-help")
        assert "Shift+1A is much better" in help_text and "Shift+2B is much better" in help_text
        page.keyboard.press("?")
        page.wait_for_timeout(400)  # reading the pair: a press within 300 ms of the last is a double press
        page.keyboard.press("Shift+Digit1")  # "!" on a US layout: the key is matched by its place, not its text
        page.wait_for_function(
            "(document.querySelector('#label-status')?.innerText || '').includes("
            "'Last: A is much better · 1 labels by erin')",
            timeout=60_000,
        )
    store = Store(workspace / "store.sqlite")
    [label] = store.labels()
    assert label.annotator == "erin" and label.strength == "much"
    assert label.verdict == label.shown_left  # the left response is the one that is much better
    [row] = store.preference_rows()
    assert row["strength"] == "much"
