"""A real browser labels pairs: one by click, one by keyboard, one undone; store and export agree."""

import json
import subprocess
import sys

import pytest
from servers import ROOT, browser_page, dropdown_options, offered, running_app

from alignstudio.core.store import Store

pytestmark = pytest.mark.browser


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id}')?.innerText || ''")


def _wait_status(page, needle: str) -> None:
    page.wait_for_function(
        f"(document.querySelector('#label-status')?.innerText || '').includes({needle!r})", timeout=60_000
    )


def _open_with_a_pair(page, url: str, annotator: str) -> None:
    page.goto(url)
    page.wait_for_function(
        "(document.querySelector('#label-prompt')?.innerText || '').includes('Prompt')", timeout=60_000
    )
    page.fill("#annotator textarea, #annotator input", annotator)


def test_label_click_keyboard_undo_then_export(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        _open_with_a_pair(page, url, "alice")
        first_left = _text(page, "label-left")
        first_prompt = _text(page, "label-prompt")
        page.click("#label-left-better")
        _wait_status(page, "Last: A is better · 1 labels by alice")  # acknowledged, then the next pair
        assert _text(page, "label-prompt") != first_prompt or _text(page, "label-left") != first_left

        page.evaluate("document.activeElement && document.activeElement.blur()")
        second_left, second_right = _text(page, "label-left"), _text(page, "label-right")
        page.wait_for_timeout(400)  # reading it: a press within 300 ms of the last is taken as a double press
        page.keyboard.press("2")  # "B is better" by keyboard
        _wait_status(page, "Last: B is better · 2 labels by alice")

        page.click("#label-undo")
        _wait_status(page, "Undid your last label")
        _wait_status(page, "1 labels by alice")
        # the undone pair is back on screen, sides as they were, to be labeled again
        assert (_text(page, "label-left"), _text(page, "label-right")) == (second_left, second_right)

    store = Store(workspace / "store.sqlite")
    labels = store.labels()
    assert len(labels) == 1 and labels[0].annotator == "alice" and labels[0].source == "human"
    events = list(store.iter_events())
    assert [e["kind"] for e in events] == ["preference", "preference", "retract"]
    assert events[1]["verdict"] in ("A", "B") and events[2]["target"] == events[1]["id"]
    [row] = store.preference_rows()
    assert labels[0].verdict == row["shown_left"]  # the left response won the clicked label
    chosen_shown = row["text_a"] if row["verdict"] == "A" else row["text_b"]

    out = tmp_path / "dpo.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alignstudio",
            "--workspace",
            str(workspace),
            "export",
            "--kind",
            "dpo",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    [exported] = [json.loads(line) for line in out.read_text().splitlines()]
    assert exported["chosen"] == [{"role": "assistant", "content": chosen_shown}]
    assert exported["prompt"] == row["messages"]


def test_two_keys_50_ms_apart_store_one_label_and_the_name_survives_a_reload(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        _open_with_a_pair(page, url, "dana")
        page.evaluate("document.activeElement && document.activeElement.blur()")
        shown = _text(page, "label-prompt"), _text(page, "label-left")
        page.keyboard.press("1")
        page.wait_for_timeout(50)
        page.keyboard.press("2")  # a second verdict on the same pair, 50 ms later
        _wait_status(page, "1 labels by dana")
        page.wait_for_function(
            f"document.querySelector('#label-left')?.innerText !== {shown[1]!r} || "
            f"document.querySelector('#label-prompt')?.innerText !== {shown[0]!r}",
            timeout=60_000,
        )
        page.wait_for_timeout(1500)  # let any late second request finish
        assert "2 labels" not in _text(page, "label-status")
        page.keyboard.press("2")  # a key pressed once the next pair has been read is a label
        _wait_status(page, "2 labels by dana")

        page.reload()
        page.wait_for_function(
            "document.querySelector('#annotator textarea, #annotator input')?.value === 'dana'", timeout=30_000
        )
    store = Store(workspace / "store.sqlite")
    first, second = sorted(store.labels(), key=lambda label: label.created)
    assert first.annotator == "dana" and first.verdict == first.shown_left  # the first key ("1": left) won
    assert second.verdict != second.shown_left and first.pair_id != second.pair_id  # "2" (right), the next pair
    assert store.event_count() == 2


def test_a_prompt_set_picked_while_the_tab_refreshes_its_lists_stays_picked(tmp_path, tiny_model_dir):
    """Opening the tab refreshes the lists; a set picked before that answer arrives must not be undone by it."""
    workspace = tmp_path / "ws"
    (workspace / "prompt_sets").mkdir(parents=True)
    (workspace / "prompt_sets" / "colours.jsonl").write_text(
        "".join(json.dumps({"prompt": f"Name colour number {i}."}) + "\n" for i in range(3))
    )
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        _open_with_a_pair(page, url, "erin")
        page.click("button[role='tab']:has-text('Data')")
        page.wait_for_timeout(1000)
        # a set added since the page loaded: only the held refresh can bring it into the list
        (workspace / "prompt_sets" / "shapes.jsonl").write_text(json.dumps({"prompt": "Name a shape."}) + "\n")
        held, holding = [], [True]
        # the refresh that opening the tab starts is held in the browser until the set has been picked: a
        # server slow to answer, made certain
        page.route("**/queue/join*", lambda route: held.append(route) if holding[0] else route.continue_())
        page.click("button[role='tab']:has-text('Label')")
        for _ in range(50):
            if held:
                break
            page.wait_for_timeout(100)
        assert held, "opening the tab sent no request"
        holding[0] = False
        page.click("#label-prompt-set input")
        page.click("#label-prompt-set ul li:has-text('colours')")
        page.wait_for_function(
            "(document.querySelector('#label-prompt')?.innerText || '').includes('Name colour')", timeout=60_000
        )
        assert "shapes" not in dropdown_options(page, "label-prompt-set")
        for route in held:
            route.continue_()
        assert offered(page, "label-prompt-set", "shapes"), "the held refresh was never answered"
        assert page.input_value("#label-prompt-set input") == "colours"
        assert "Name colour" in _text(page, "label-prompt")
