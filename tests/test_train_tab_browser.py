"""A real browser on the Train tab at a desktop width: a finished run's before/after answers are readable side by
side, its verdict on 6 held-out pairs carries its interval, and its capability check (lm-eval on the shipped
offline task) runs from the button and shows the delta."""

import json

import pytest
from servers import ROOT, browser_page, running_app

from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
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


def test_a_verdict_on_six_heldout_pairs_shows_its_interval_not_a_bare_learned(tmp_path, tiny_model_dir):
    """Issue 38: "learned: accuracy 1.00 on 6 held-out pairs" had no interval. 5 of 6 right is 0.83, whose 95%
    interval [0.44, 0.97] holds chance: the tab says too few pairs to tell, with the interval, as the worker's
    card has it."""
    from alignstudio.training.verdict import judge_run

    name = "six-heldout"
    run = RunFolder.create(tmp_path / "ws" / "runs" / name, RunSpec(data=str(PAIRS), model=str(tiny_model_dir)))
    run.transition(RUNNING, expect=QUEUED)
    run.transition(SUCCEEDED, expect=RUNNING, step=6)
    train = [{"step": i + 1, "loss": v, "rewards/accuracies": 0.75} for i, v in enumerate((0.69, 0.6, 0.5, 0.4))]
    held = [{"step": 4, "eval_loss": 0.55, "eval_rewards/accuracies": 5 / 6}]
    run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in train))
    run.heldout_path.write_text("".join(json.dumps(r) + "\n" for r in held))
    verdict = judge_run(train + held, heldout_rows=6).to_dict()
    write_card(run.card_path, {"run": name, "state": SUCCEEDED, "verdict": verdict})
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url), browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(url)
        page.click("button[role='tab']:has-text('Train')")
        page.wait_for_function(
            "(document.querySelector('#train-diagnostics')?.innerText || '').includes('held-out pairs')",
            timeout=60_000,
        )
        text = page.inner_text("#train-diagnostics")
        assert "Too few held-out pairs to tell" in text and "95% interval 0.44-0.97" in text, text
        assert not text.startswith("Learned"), text


def test_the_capability_button_checks_a_finished_run_and_shows_the_delta(tmp_path, tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    ws = Workspace.open(tmp_path / "ws")
    finished_run(ws.root, tiny_model_dir, "lora-run")
    model_dir = ws.runs_dir / "lora-run" / "model"
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config).save_pretrained(model_dir)
    store = Store(ws.db_path)
    store.register_model("lora-run", model_dir, kind="adapter", base=str(tiny_model_dir), run_dir=model_dir.parent)
    store.close()
    RunFolder(model_dir.parent).update(registered_as="lora-run", model_dir=str(model_dir))
    with running_app(ws.root, tiny_model_dir) as (_, url), browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(url)
        page.click("button[role='tab']:has-text('Train')")
        page.wait_for_function(
            "(document.querySelector('#train-status')?.innerText || '').includes('SUCCEEDED')", timeout=60_000
        )
        page.fill("#train-capabilities-limit input, #train-capabilities-limit textarea", "5")
        page.click("#train-capabilities")
        page.wait_for_function(
            "(document.querySelector('#train-capabilities-result')?.innerText || '').includes('5% threshold')",
            timeout=240_000,
        )
        result = page.inner_text("#train-capabilities-result")
    assert "alignstudio_basics" in result and "acc_norm" in result and "lora-run" in result, result
    check = json.loads((model_dir.parent / "capabilities.json").read_text())
    acc = next(s for s in check["scores"] if s["metric"] == "acc")
    assert acc["n"] == 5 and f"{100 * acc['delta']:+.1f}" in result, result
