"""A real browser starts a training run from the Train tab and watches it finish, with drawn plots."""

import pytest
from servers import ROOT, browser_page, running_app, start_run_in_browser

pytestmark = pytest.mark.browser

PAIRS = ROOT / "data" / "example_preferences.jsonl"


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id}')?.innerText || ''")


def test_train_tab_runs_dpo_and_draws_the_live_plots(tmp_path, tiny_model_dir):
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url), browser_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.click("button[role='tab']:has-text('Train')")
        page.wait_for_selector("#train-start", state="visible")
        start_run_in_browser(page, PAIRS, tiny_model_dir, max_steps=4, name="from-browser")
        page.wait_for_function(
            "(document.querySelector('#train-status')?.innerText || '').includes('SUCCEEDED')", timeout=240_000
        )
        assert "registered as from-browser" in _text(page, "train-status")
        assert "from-browser" in _text(page, "train-runs")
        # the loss and its ln(2) reference, and the chosen/rejected rewards, are drawn as lines
        page.wait_for_function(
            "document.querySelectorAll('#train-plot-loss .mark-line path').length >= 2", timeout=30_000
        )
        page.wait_for_function(
            "document.querySelectorAll('#train-plot-rewards .mark-line path').length >= 2", timeout=30_000
        )
        assert not errors, errors
    assert (tmp_path / "ws" / "runs" / "from-browser" / "model" / "adapter_config.json").is_file()
