"""The Evaluate tab in a real browser: run an evaluation with the local judge, see the report; judge the
store's pairs with a progress bar; the agreement table fills; the API key never shows up on the page."""

import pytest
from servers import browser_page, free_port

pytestmark = pytest.mark.browser
SECRET = "sk-browser-secret-42"


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id}')?.innerText || ''")


def _wait_text(page, elem_id: str, needle: str, timeout: int = 180_000) -> None:
    page.wait_for_function(
        f"(document.querySelector('#{elem_id}')?.innerText || '').includes({needle!r})", timeout=timeout
    )


def test_evaluate_tab_in_a_browser(tmp_path, tiny_model_dir, monkeypatch):
    import gradio as gr

    # the judge is "best available": with no reward model, the configured one (here the local judge); the store
    # has no human labels, so the judge is used as "unmeasured" and the report says so
    monkeypatch.setenv("ALIGNSTUDIO_JUDGE", "local")

    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services
    from alignstudio.ui import evaluate as tab

    services = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir))
    for i in range(3):
        services.store.add_pair(
            [{"role": "user", "content": f"Question {i}?"}],
            "A careful, complete answer.",
            "No.",
            model_a="m",
            model_b="m",
        )
    with gr.Blocks() as demo:
        with gr.Tab("Evaluate") as eval_tab:
            view = tab.build(services)
        tab.wire(view, services, eval_tab)
    demo.queue()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with browser_page() as page:
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#eval-run")
            page.fill("#eval-limit input", "2")
            page.fill("#eval-max-new-tokens input", "8")
            page.fill("#eval-judge-key input", SECRET)
            page.click("#eval-run")
            _wait_text(page, "eval-summary", "% done")  # the running line: stage, share done, time so far
            assert page.locator("#eval-summary .eta-bar, #eval-summary .progress-text").count() == 0
            _wait_text(page, "eval-summary", "wins / ties / losses")
            summary = _text(page, "eval-summary")
            assert "judged by local-" in summary and "length-controlled" in summary
            assert "2 prompts" in summary
            _wait_text(page, "eval-samples", "overnight oats")  # the first held-out prompt, side by side

            page.click("#eval-bulk-run")
            _wait_text(page, "eval-bulk-status", "Recorded")
            assert "judged 3 pairs" in _text(page, "eval-bulk-status")
            _wait_text(page, "eval-agreement", "judge:local-")
            assert SECRET not in page.evaluate("document.body.innerText")
    finally:
        demo.close()
        services.close()
    labels = services.store.labels()
    assert len(labels) == 3 and all(lab.source.startswith("judge:local-") for lab in labels)
    reports = list((tmp_path / "ws" / "evals").glob("*.json"))
    assert len(reports) == 1 and SECRET not in reports[0].read_text()
