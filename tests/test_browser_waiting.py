"""While no pair is ready (the labeling queue is empty, sampling is behind) the Label tab waits in plain sight: a
placeholder where the pair was, the verdict buttons (and their keys) off until the next pair is on screen, no
error, and the next pair shown as soon as there is one."""

import pytest
from servers import browser_page, running_app

from alignstudio.core.label_queue import LabelQueue
from alignstudio.core.store import Store

pytestmark = pytest.mark.browser
VERDICTS = ("label-left-better", "label-right-better", "label-tie", "label-both-bad")


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id}')?.innerText || ''")


def _disabled(page) -> list[bool]:
    return [page.evaluate(f"document.getElementById('{b}')?.disabled") for b in VERDICTS]


def _wait_for_pair(page, words: str = "Prompt") -> None:
    page.wait_for_function(
        f"(document.querySelector('#label-prompt')?.innerText || '').includes({words!r}) && "
        "!document.getElementById('label-left-better').disabled",
        timeout=90_000,
    )


def _wait_for_empty_queue(page) -> None:
    page.wait_for_function(
        "(document.querySelector('#label-prompt')?.innerText || '').includes('labeling queue is empty') && "
        "document.getElementById('label-left-better').disabled",
        timeout=60_000,
    )


def _error_badges(page) -> int:
    """Gradio's red "Error" marks on components, and error toasts, on screen."""
    return page.evaluate(
        "[...document.querySelectorAll('.error, .toast-body.error')].filter(e => e.offsetParent !== null).length"
    )


def _queue(workspace, question: str) -> None:
    store = Store(workspace / "store.sqlite")
    pair = store.add_pair(
        [{"role": "user", "content": question}], f"Yes: {question}", f"No, not {question}", model_a="m", model_b="m"
    )
    LabelQueue(store).fill({pair: 0.0})
    store.close()


def test_an_empty_queue_waits_with_the_buttons_off_and_a_labeled_pair_does_not_stay_clickable(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        page.goto(url)
        _wait_for_pair(page)
        page.fill("#annotator textarea, #annotator input", "ivy")
        page.click("#label-source label:has-text('labeling queue')")
        _wait_for_empty_queue(page)  # not an error: a wait
        assert _disabled(page) == [True] * 4 and _text(page, "label-left") == "" and _error_badges(page) == 0

        _queue(workspace, "first queued question?")
        _wait_for_pair(page, "first queued question?")  # the waiting tab asks again by itself
        page.click("#label-left-better")  # the queue's last pair
        _wait_for_empty_queue(page)
        assert _disabled(page) == [True] * 4 and _error_badges(page) == 0
        assert "first queued" not in _text(page, "label-left") + _text(page, "label-prompt")  # no stale pair
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.wait_for_timeout(400)
        page.keyboard.press("2")  # a key while waiting judges nothing

        _queue(workspace, "second queued question?")
        _wait_for_pair(page, "second queued question?")
        assert "1 labels by ivy" in _text(page, "label-status")
    labels = Store(workspace / "store.sqlite").labels()
    assert len(labels) == 1 and labels[0].verdict == labels[0].shown_left  # the click; the key judged nothing
