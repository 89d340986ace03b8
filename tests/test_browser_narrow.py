"""A phone-width page (390 px): a one-line title, the pair on the first screen; "?" shows the keys; after a
reload the status counts the remembered annotator's labels; the Feedback tab says it is loading. The server
prints its address and no advice to share a public link."""

import pytest
from playwright.sync_api import sync_playwright
from servers import BROWSER_ARGS, running_app

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 390, 844


def _box(page, selector: str) -> dict:
    return page.evaluate(
        f"(() => {{ const r = document.querySelector({selector!r}).getBoundingClientRect(); "
        "return {top: r.top, height: r.height}; })()"
    )


def test_a_phone_sees_a_compact_header_the_pair_the_key_help_and_its_own_name(tmp_path, tiny_model_dir):
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
            page.goto(url)
            page.wait_for_function(
                "(document.querySelector('#label-prompt')?.innerText || '').includes('Prompt')", timeout=120_000
            )
            title = _box(page, "h1")  # the page's title, "AlignStudio"
            font = page.evaluate("parseFloat(getComputedStyle(document.querySelector('h1')).fontSize)")
            assert title["height"] < 2 * font  # one line, not "Align / Stu / dio"
            assert _box(page, "#label-prompt")["top"] < HEIGHT  # the pair starts on the first screen

            page.fill("#annotator textarea, #annotator input", "kim")
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.keyboard.press("?")
            page.wait_for_selector("#key-help:not([hidden])", timeout=5_000)
            help_text = page.inner_text("#key-help")
            assert "A is better" in help_text and "undo last" in help_text and "good" in help_text
            page.keyboard.press("Escape")
            page.wait_for_selector("#key-help", state="hidden", timeout=5_000)

            page.wait_for_timeout(500)  # the name reaches the browser's storage
            page.reload()
            page.wait_for_function(
                "(document.querySelector('#label-status')?.innerText || '').includes('labels by')", timeout=120_000
            )
            assert "0 labels by kim" in page.inner_text("#label-status")  # not "by anonymous"

            page.click("button[role='tab']:has-text('Feedback')")
            shown = page.inner_text("#feedback-prompt")
            assert "Open this tab" not in shown and ("Loading" in shown or "Prompt" in shown)
        finally:
            browser.close()
    [log] = tmp_path.glob("app-*.log")
    printed = log.read_text()
    assert "* Running on http://127.0.0.1:" in printed and "share=True" not in printed  # no public-link advice
