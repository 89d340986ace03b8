"""A real browser on the Data tab: verdicts in words (no emoji), the Verdict filter in the table's words, Retract
asks before it retracts, the export says what it left out, and admins see the per-annotator quality table."""

import pytest
from servers import browser_page, dropdown_options, running_app

from alignstudio.core.store import Store

pytestmark = pytest.mark.browser

MSG = [{"role": "user", "content": "Best way to learn Python?"}]


def _wait_text(page, elem_id: str, needle: str, timeout: int = 60_000) -> None:
    page.wait_for_function(
        f"(document.querySelector('#{elem_id}')?.innerText || '').includes({needle!r})", timeout=timeout
    )


def _retracted(workspace) -> int:
    store = Store(workspace / "store.sqlite")
    try:
        return sum(1 for event in store.iter_events() if event["kind"] == "retract")
    finally:
        store.close()


def test_data_tab_words_filter_retract_confirmation_and_export_message(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    store = Store(workspace / "store.sqlite")
    pair = store.add_pair(MSG, "Build small projects.", "Read the manual cover to cover.", model_a="m", model_b="m")
    store.add_preference(pair, "A", annotator="ann", shown_left="B")  # "right is better" on screen
    tied = store.add_pair(MSG, "Practice daily.", "Practice weekly.", model_a="m", model_b="m")
    store.add_preference(tied, "tie", annotator="ann", shown_left="A")
    store.add_feedback(store.add_generation(MSG, "Write code every day.", model="m"), "up", annotator="ann")
    store.close()
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        page.goto(url)
        page.click("button[role='tab']:has-text('Data')")
        _wait_text(page, "data-table", "right is better")
        table = page.inner_text("#data-table")
        assert "thumbs up" in table and "\U0001f44d" not in table  # words, not an emoji that renders as a box

        options = dropdown_options(page, "data-verdict")
        assert "right is better" in options and "thumbs up" in options and "A" not in options, options
        page.click("#data-stored label")  # the stored form: the filter offers the stored names
        _wait_text(page, "data-table", "shown_left")
        page.wait_for_timeout(500)
        assert "A" in dropdown_options(page, "data-verdict")
        page.click("#data-stored label")
        _wait_text(page, "data-table", "right is better")

        # Retract: the first click asks, nothing is retracted; the second retracts
        page.locator("#data-table div.cell-wrap:visible", has_text="right is better").first.click()
        page.wait_for_function(
            "(document.querySelector('#data-event-id textarea, #data-event-id input')?.value || '').length > 0",
            timeout=30_000,
        )
        page.click("#data-retract")
        _wait_text(page, "data-message", "Confirm retract")
        page.wait_for_function("document.querySelector('#data-retract')?.innerText.includes('Confirm retract')")
        assert _retracted(workspace) == 0
        page.click("#data-retract")
        _wait_text(page, "data-message", "Retracted")
        assert _retracted(workspace) == 1
        assert "Confirm" not in page.inner_text("#data-retract")

        # the export names what it left out: the tie label (and the pair retracted above leaves no row at all)
        store = Store(workspace / "store.sqlite")
        store.add_preference(pair, "B", annotator="bob", shown_left="A")
        store.close()
        page.locator(".label-wrap", has_text="Snapshots and export").first.click()
        page.click("#data-export")
        _wait_text(page, "data-message", "Left out: 1 tie labels")

        # admins see the per-annotator table, its plot, and the published anchors
        page.locator(".label-wrap", has_text="Annotators").first.click()
        page.click("#data-quality-refresh")
        _wait_text(page, "data-quality", "(campaign)")
        _wait_text(page, "data-quality-note", "63-77%")
        page.wait_for_selector("#data-quality-plot .vega-embed", timeout=30_000)
