"""A real browser: lists are current without a restart, a reload during a run restores its live view, the Data
tab shows labels as the annotator saw them, and empty-default number boxes are empty."""

import pytest
from servers import ROOT, browser_page, dropdown_options, offered, running_app, start_run_in_browser

from alignstudio.core.store import Store
from alignstudio.training.run_folder import RunFolder
from alignstudio.training.spec import RunSpec

pytestmark = pytest.mark.browser

PAIRS = ROOT / "data" / "example_preferences.jsonl"
MSG = [{"role": "user", "content": "Best way to learn Python?"}]
# the loss plot has a drawn line of several points (an empty plot draws no line segment)
DRAWN_LOSS = (
    "Array.from(document.querySelectorAll('#train-plot-loss .mark-line path'))"
    ".filter(p => (p.getAttribute('d') || '').includes('L')).length >= 1"
)


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id}')?.innerText || ''")


def _wait_text(page, elem_id: str, needle: str, timeout: int = 60_000) -> None:
    page.wait_for_function(
        f"(document.querySelector('#{elem_id}')?.innerText || '').includes({needle!r})", timeout=timeout
    )


def _tab(page, name: str) -> None:
    page.click(f"button[role='tab']:has-text('{name}')")


def _disabled(page, elem_id: str) -> bool:
    return page.eval_on_selector(f"#{elem_id}", "b => b.disabled")


def test_reload_during_a_run_restores_its_live_plots_and_only_cancel_applies(tmp_path, tiny_model_dir):
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url), browser_page() as page:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        _tab(page, "Train")
        page.wait_for_selector("#train-start", state="visible")
        # empty = from the epochs: shown empty, not 0
        assert page.input_value("#train-max-steps textarea, #train-max-steps input") == ""
        start_run_in_browser(page, PAIRS, tiny_model_dir, max_steps=2000, name="long-run")
        _wait_text(page, "train-status", "RUNNING", timeout=120_000)
        page.wait_for_function(DRAWN_LOSS, timeout=180_000)

        page.reload()
        _tab(page, "Train")
        _wait_text(page, "train-status", "RUNNING")
        assert page.input_value("#train-run input") == "long-run"
        assert "Choose a run" not in _text(page, "train-status")
        page.wait_for_function(DRAWN_LOSS, timeout=60_000)
        assert "long-run" in dropdown_options(page, "train-run")
        assert not _disabled(page, "train-cancel") and _disabled(page, "train-resume")
        assert _disabled(page, "train-merge") and _disabled(page, "train-eval")

        page.click("#train-cancel")
        _wait_text(page, "train-status", "CANCELLED", timeout=120_000)
        page.wait_for_function("document.querySelector('#train-resume').disabled === false", timeout=20_000)
        assert _disabled(page, "train-cancel")
        assert not errors, errors


def test_a_model_trained_after_start_shows_up_and_data_shows_what_the_annotator_saw(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        page.goto(url)
        _tab(page, "Evaluate")
        page.wait_for_selector("#eval-model", state="visible")
        assert page.input_value("#eval-seed textarea, #eval-seed input") == ""
        assert not any("trained-after-start" in o for o in dropdown_options(page, "eval-model"))

        # while the app runs, a training run registers a model version, and labels arrive
        store = Store(workspace / "store.sqlite")
        folder = tmp_path / "adapter"
        folder.mkdir()
        store.register_model("trained-after-start", folder, kind="adapter", base=str(tiny_model_dir))
        pair = store.add_pair(MSG, "Build small projects.", "Read the manual cover to cover.", model_a="m", model_b="m")
        store.add_preference(pair, "A", annotator="ann", shown_left="B")  # "right is better" on screen
        for i in range(9):
            other = store.add_pair(
                [{"role": "user", "content": f"Question {i}?"}],
                f"Answer {i} " * 40,
                f"Other answer {i} " * 40,
                model_a="m",
                model_b="m",
            )
            store.add_preference(other, "B", annotator="ann", shown_left="A")
        store.close()

        # opening the tab is enough (no reload, no restart)
        _tab(page, "Data")
        _wait_text(page, "data-table", "right is better")
        _tab(page, "Evaluate")
        assert offered(page, "eval-model", "trained-after-start"), "Evaluate"
        for tab, dropdown in (("Arena", "arena-model-x"), ("Feedback", "feedback-model-a"), ("Label", "label-model-a")):
            _tab(page, tab)
            if tab != "Arena":  # the model lists sit in the tab's closed "Sampling settings"
                page.locator(".label-wrap:visible", has_text="Sampling settings").first.click()
            assert offered(page, dropdown, "trained-after-start"), tab
        # and a reload offers it too, chosen as the model to evaluate
        page.reload()
        _tab(page, "Evaluate")
        page.wait_for_function(
            "document.querySelector('#eval-model input')?.value === 'trained-after-start'", timeout=30_000
        )

        _tab(page, "Data")
        _wait_text(page, "data-table", "right is better")
        headers = page.eval_on_selector_all(
            "#data-table thead th", "cells => cells.map(c => c.innerText.trim()).filter(Boolean)"
        )
        assert headers[-1].startswith("event_id") and "left" in " ".join(headers), headers
        # one line a label: far more than three rows fit in the table's box
        shown = page.eval_on_selector(
            "#data-table",
            """table => {
            const box = table.getBoundingClientRect();
            return Array.from(table.querySelectorAll('*')).filter(cell => cell.children.length === 0
                && (cell.innerText || '').trim() === 'preference'
                && cell.getBoundingClientRect().top >= box.top && cell.getBoundingClientRect().bottom <= box.bottom
            ).length }""",
        )
        assert shown >= 8, shown
        page.click("#data-stored label")
        _wait_text(page, "data-table", "shown_left")

        _tab(page, "Validate")
        headers = _text(page, "validate-findings")
        assert "severity" in headers and "1\t2\t3" not in headers

        # two finished runs appear on opening the Train tab; a click on a row selects that run, and only
        # Resume applies to a failed run
        for name in ("first-run", "second-run"):
            run = RunFolder.create(workspace / "runs" / name, RunSpec(method="dpo", model="tiny", data=str(PAIRS)))
            run.transition("failed", error="stopped for the test")
        _tab(page, "Train")
        _wait_text(page, "train-runs", "first-run")
        page.locator("#train-runs").get_by_text("first-run", exact=True).first.click()
        page.wait_for_function("document.querySelector('#train-run input')?.value === 'first-run'", timeout=30_000)
        _wait_text(page, "train-status", "FAILED")
        page.wait_for_function("document.querySelector('#train-resume').disabled === false", timeout=20_000)
        assert _disabled(page, "train-cancel") and _disabled(page, "train-merge")
