"""In Chromium: the labeling guidelines open on a person's first visit and collapse after it, `g` shows and hides
them, their markdown renders with no HTML of the author's own, a label records the version shown, and at a phone's
width (390 px) the panel overlaps nothing."""

import json

import pytest
from playwright.sync_api import sync_playwright
from servers import BROWSER_ARGS, running_app

from alignstudio.core.store import Store
from alignstudio.services.labeling.guidelines import GuidelinesService

pytestmark = pytest.mark.browser
GUIDELINES = (
    "# Team rules\n\nPrefer the **correct** answer, then the shorter one.\n\n"
    "<script>window.pwned = 1</script> <b>raw</b>\n\n"
    "```\n" + "a_very_long_code_line_" * 12 + "\n```\n"
)
OPEN = "document.querySelector('#{tab}-guidelines details.guidelines-panel')?.open"


def _seed(workspace) -> str:
    store = Store(workspace / "store.sqlite")
    try:
        return GuidelinesService(store).set(GUIDELINES).version  # for every campaign
    finally:
        store.close()


def _first_pair(page) -> None:
    page.wait_for_function(
        "(document.querySelector('#label-prompt')?.innerText || '').includes('Prompt')", timeout=300_000
    )


def _is_open(page, tab: str = "label"):
    return page.evaluate(OPEN.format(tab=tab))


def test_guidelines_open_first_then_collapse_and_g_toggles_them(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    version = _seed(workspace)
    with running_app(workspace, tiny_model_dir) as (_, url), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            page.goto(url)
            stored = "localStorage.getItem('alignstudio-annotator')"
            page.wait_for_selector("#annotator textarea, #annotator input", timeout=120_000)
            page.wait_for_timeout(1_000)  # the app has read (and may have written) the remembered name
            before = page.evaluate(stored)
            page.fill("#annotator textarea, #annotator input", "erin")
            page.evaluate("document.activeElement && document.activeElement.blur()")
            # the name reaches the browser's storage (a fixed wait lost it under load: labels by anonymous)
            page.wait_for_function(f"{stored} !== {json.dumps(before)}", timeout=60_000)
            page.reload()  # a returning annotator's first visit: the name is there before the first pair
            page.wait_for_function(
                "document.querySelector('#annotator textarea, #annotator input')?.value === 'erin'", timeout=60_000
            )
            _first_pair(page)
            page.wait_for_function(OPEN.format(tab="label") + " === true", timeout=30_000)  # open: never read
            panel = page.inner_text("#label-guidelines")
            assert "Team rules" in panel and "Prefer the correct answer" in panel and version in panel
            assert page.evaluate("window.pwned") is None  # the author's HTML is text, never run
            assert page.query_selector("#label-guidelines script, #label-guidelines b") is None
            assert "<b>raw</b>" in panel

            # at 390 px: nothing wider than the screen, and the open panel ends above the pair
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            right = page.evaluate("document.querySelector('#label-guidelines').getBoundingClientRect().right")
            assert right <= 390
            bottom = page.evaluate("document.querySelector('#label-guidelines').getBoundingClientRect().bottom")
            assert bottom <= page.evaluate("document.querySelector('#label-prompt').getBoundingClientRect().top")

            page.keyboard.press("g")  # one key away: hide, then show again
            assert _is_open(page) is False
            page.keyboard.press("g")
            assert _is_open(page) is True
            page.keyboard.press("?")
            assert "show or hide the labeling guidelines" in page.inner_text("#key-help")
            page.keyboard.press("?")

            page.keyboard.press("g")
            page.wait_for_function("document.querySelector('#label-left-better')?.disabled === false", timeout=60_000)
            page.wait_for_timeout(400)  # a verdict within 300 ms of the last key is a double press
            page.keyboard.press("1")
            page.wait_for_function(
                "(document.querySelector('#label-status')?.innerText || '').includes('1 labels by erin')",
                timeout=300_000,
            )
            page.reload()  # read once: collapsed from now on, still one key away
            _first_pair(page)
            page.wait_for_function(  # the panel as loaded for erin (not the placeholder drawn before it)
                f"(document.querySelector('#label-guidelines')?.innerText || '').includes('{version}')", timeout=60_000
            )
            page.wait_for_function(OPEN.format(tab="label") + " === false", timeout=30_000)
            page.wait_for_timeout(1_000)  # the panel stays as it is
            assert _is_open(page) is False
            page.keyboard.press("g")
            assert _is_open(page) is True

            page.click("button[role='tab']:has-text('Feedback')")  # the Feedback tab has its own panel
            page.wait_for_function(
                "(document.querySelector('#feedback-guidelines')?.innerText || '').includes('" + version + "')",
                timeout=300_000,
            )
            was = _is_open(page, "feedback")
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.keyboard.press("g")
            assert _is_open(page, "feedback") is (not was)
            assert _is_open(page) is True  # the hidden Label tab's panel is left alone
        finally:
            browser.close()
    store = Store(workspace / "store.sqlite")
    try:
        [label] = store.labels()
        assert label.annotator == "erin" and label.guidelines == version
    finally:
        store.close()
