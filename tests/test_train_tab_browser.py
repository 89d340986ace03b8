"""A real browser on the Train tab at a desktop width: a finished run's before/after answers are readable side by
side, and the snapshot picker moves to a snapshot exported after the page was drawn."""

import pytest
from servers import ROOT, browser_page, running_app

from alignstudio.training.card import write_card
from alignstudio.training.run_folder import QUEUED, RUNNING, SUCCEEDED, RunFolder
from alignstudio.training.spec import RunSpec

pytestmark = pytest.mark.browser

PAIRS = ROOT / "data" / "example_preferences.jsonl"
PROMPT = (
    "Explain to a new gardener, step by step and with the reasons for each step, how to plant a small apple tree "
    "in clay soil so that it survives its first winter, what to water it with, and how often to check it. "
)
BASE = "Base answer: dig a hole and put the tree in it. " * 12
TRAINED = "Trained answer: dig a wide shallow hole, loosen the clay, water deeply once a week. " * 10


def finished_run(workspace, model, name: str) -> None:
    """A succeeded run folder whose card holds long before/after answers (as the worker writes them)."""
    run = RunFolder.create(workspace / "runs" / name, RunSpec(data=str(PAIRS), model=str(model)))
    run.transition(RUNNING, expect=QUEUED)
    run.transition(SUCCEEDED, expect=RUNNING, step=4)
    rows = [{"prompt": PROMPT * 2, "base": BASE, "trained": TRAINED, "seed": 1, "heldout": True}] * 3
    write_card(run.card_path, {"run": name, "state": SUCCEEDED, "before_after": rows})


def test_before_after_shows_base_and_trained_side_by_side_at_1400px(tmp_path, tiny_model_dir):
    finished_run(tmp_path / "ws", tiny_model_dir, "wide-answers")
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url), browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(url)
        page.click("button[role='tab']:has-text('Train')")
        page.wait_for_function(
            "(document.querySelector('#train-before-after')?.innerText || '').includes('Trained answer')",
            timeout=60_000,
        )
        boxes = {}
        for side, marker in (("base", "Base answer"), ("trained", "Trained answer")):
            cell = page.locator("#train-before-after").get_by_text(marker).first
            cell.scroll_into_view_if_needed()
            boxes[side] = cell.bounding_box()
        width = page.viewport_size["width"]
        for side, box in boxes.items():
            assert box is not None, side
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (side, box)  # on screen, not scrolled off
            assert box["width"] >= 250, (side, box)  # a readable column, not a sliver
        assert boxes["trained"]["x"] > boxes["base"]["x"] + boxes["base"]["width"] - 1, boxes  # side by side
        assert abs(boxes["trained"]["y"] - boxes["base"]["y"]) < 40, boxes  # on the same line
