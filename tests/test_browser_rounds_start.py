"""Rounds started from the Rounds tab that cannot run (no reward model to judge with) read `failed`, with the
error in the tab itself: not `queued · starting` for ever, not only in the collapsed log."""

import pytest
from servers import browser_page, running_app

pytestmark = pytest.mark.browser


def test_a_failed_rounds_start_reads_failed_with_its_error(tmp_path, tiny_model_dir):
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url), browser_page() as page:
        page.goto(url)
        page.click("button[role='tab']:has-text('Rounds')")
        page.click("#rounds-judge input")
        page.click("#rounds-judge ul li:has-text('reward model (offline)')")  # none trained in this workspace
        name_before = page.input_value("#rounds-name textarea, #rounds-name input")
        page.click("#rounds-start")
        page.wait_for_function(
            "(document.querySelector('#rounds-status')?.innerText || '').includes('failed')", timeout=240_000
        )
        status = page.inner_text("#rounds-status")
        assert "reward" in status.lower() and "queued" not in status  # the error itself, in the tab
        assert page.input_value("#rounds-pick input").startswith("rounds-")
        assert name_before == ""  # named when started, not when the page loaded (that name would repeat)
