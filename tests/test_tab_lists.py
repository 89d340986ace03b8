"""Lists that stay current and values shown rightly: the tab handlers behind page load, tab open and the run
table (plain functions, real store and run folders, a stand-in training worker)."""

import gradio as gr
import pandas as pd
import pytest
from servers import ROOT
from stand_in_worker import wait_for

from alignstudio.services.data.checks import histogram
from alignstudio.services.training import spec_from_form
from alignstudio.training.spec import RunSpec
from alignstudio.ui import evaluate, rounds, train, validate


def _interactive(updates) -> list[bool]:
    return [u["interactive"] for u in updates]


def test_reload_restores_the_running_run_else_the_remembered_or_newest(services):
    runs = services.runs.manager
    done = runs.start(RunSpec(method="dpo", model="tiny", data="ok"), "done")
    runs.wait(done, timeout=30)
    live = runs.start(RunSpec(method="dpo", model="tiny", data="wait-cancel"), "live")
    wait_for(lambda: runs.status(live).state == "running")
    table, run_update, compare_update, status, *rest = train.restore(services, None)
    assert run_update["value"] == "live" and set(run_update["choices"]) >= {"done", "live"}
    assert set(table["run"]) == {"done", "live"} and compare_update["choices"]
    assert status != "Choose a run." and "RUNNING" in status
    cancel, resume, merge, evaluate_ = rest[-4:]
    assert _interactive([cancel, resume, merge, evaluate_]) == [True, False, False, False]
    # a remembered choice wins while it exists; a gone one falls back to the running run
    assert train.restore(services, "done")[1]["value"] == "done"
    assert train.restore(services, "deleted-run")[1]["value"] == "live"
    assert _interactive(train.run_actions(services, "done")) == [False, False, True, True]
    # opening the tab keeps a selection (only an empty one gets the running run)
    assert "value" not in train.run_lists(services, "done")[1] and train.run_lists(services, None)[1]["value"] == "live"
    runs.cancel(live)


def test_clicking_a_row_of_the_run_table_selects_that_run():
    table = pd.DataFrame([["newer", "running"], ["older", "succeeded"]], columns=["run", "state"])
    event = gr.SelectData(None, {"index": [1, 3], "value": "x"})
    assert train.pick_from_table(table, event) == "older"


def test_train_and_evaluate_lists_include_a_model_trained_after_start(services, tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    services.store.register_model("trained-1", folder, kind="adapter", base="smollm2")
    model, baseline, prompt_set, reports = evaluate.lists(services, None, "smollm2", None, None, fresh=True)
    assert "trained-1" in model["choices"] and model["value"] == "trained-1"  # a fresh page offers it first
    assert baseline["value"] == "smollm2" and prompt_set["value"] == "eval" and reports["choices"] == []
    opened = evaluate.lists(services, "smollm2", "smollm2", "eval", None)  # opening the tab: choices only
    assert "trained-1" in opened[0]["choices"] and "value" not in opened[0] and "value" not in opened[2]
    assert "trained-1" in train.form_lists(services, "smollm2", None)[0]["choices"]
    assert "trained-1" in rounds.lists(services, "smollm2", None)[0]["choices"]


def test_train_snapshot_list_is_filled_on_load_with_the_newest_chosen(services, tmp_path):
    from alignstudio.services.data.snapshots import export_snapshot

    assert train.form_lists(services, None, None)[1]["choices"] == []
    pair = services.store.add_pair(
        [{"role": "user", "content": "Hi?"}], "Hello there, friend.", "No.", model_a="m", model_b="m"
    )
    services.store.add_preference(pair, "A", annotator="ann", shown_left="A")
    export_snapshot(services.store, services.workspace, "dpo")
    snapshots = train.form_lists(services, None, None)[1]
    assert len(snapshots["choices"]) == 1 and snapshots["value"] == snapshots["choices"][0][1]


def test_empty_means_default_number_boxes_show_empty_not_zero(tmp_path, tiny_model_dir):
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services
    from alignstudio.ui.app import build_app

    services = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir))
    try:
        demo = build_app(services)
    finally:
        services.close()
    boxes = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    for elem_id in (
        "train-max-steps",
        "train-lr",
        "train-epochs",
        "train-batch-size",
        "eval-seed",
        "eval-bulk-limit",
        "rounds-steps",
    ):
        box = boxes[elem_id]
        # Gradio 6.31 draws an empty gr.Number as 0 (its frontend sets `value ??= 0`): these are text boxes
        # that start empty and name their default in the placeholder
        assert not isinstance(box, gr.Number) and box.value in ("", None) and box.placeholder, elem_id
    findings = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "validate-findings")
    assert findings.value["headers"] == validate.FINDING_COLUMNS  # never a table headed "1 2 3"


def test_length_histogram_bins_are_in_numeric_order():
    frame = histogram({"chosen": [19, 24, 102, 106, 250], "rejected": [7, 60, 130]})
    update = validate.bars(frame)
    order = update["sort"]
    assert [float(b) for b in order] == sorted(float(b) for b in order)
    assert order[0] == "7" and len(order) == len(set(frame["bin"])) == 20
    assert sorted(order) != order  # as text they would sort differently (e.g. "102" < "19")


def test_rounds_table_shows_formatted_numbers(services):
    import json

    folder = services.workspace.root / "rounds" / "r1"
    folder.mkdir(parents=True)
    row = {
        "round": 1,
        "policy": "smollm2",
        "sampled": 2,
        "kept": 2,
        "final_loss": 0.6931471805599453,
        "win_rate": 1.0,
        "win_rate_ci": [1.0, 1.0],
        "lc_win_rate": 1.0,
        "wins": 2,
        "ties": 0,
        "losses": 0,
    }
    (folder / "rounds.json").write_text(json.dumps({"state": "succeeded", "note": "", "rounds": [row]}))
    _, table, _, _ = rounds.show(services, "r1")
    shown = table.iloc[0]
    assert shown["final_loss"] == "0.6931" and shown["win_rate"] == "1.00"
    assert "too small" in shown["win_rate_ci (95%)"]
    assert rounds.lists(services, None, None)[1]["value"] == "r1"  # a fresh page shows the newest rounds


def test_optional_number_boxes_parse_what_was_typed():
    from alignstudio.core.errors import UserError
    from alignstudio.ui.fields import optional_number

    assert optional_number("", "max steps") is None and optional_number(None, "seed") is None
    assert optional_number(" 40 ", "max steps", whole=True) == 40 and optional_number(7, "seed", whole=True) == 7
    assert optional_number("0.001", "learning rate") == 0.001
    with pytest.raises(UserError, match="max steps must be a whole number"):
        optional_number("2.5", "max steps", whole=True)
    with pytest.raises(UserError, match="seed must be a number or empty"):
        optional_number("soon", "seed")
    pairs = str(ROOT / "data" / "example_preferences.jsonl")
    spec = spec_from_form(
        dict(
            method="dpo",
            loss_type=["sigmoid"],
            model="smollm2",
            data_kind="file",
            snapshot=None,
            data_file=pairs,
            beta=0.1,
            learning_rate="",
            max_steps="",
            num_train_epochs="",
            batch_size="",
            grad_accum=1,
            max_length=64,
            seed=42,
            label_smoothing=0.0,
            full=False,
            lora_r=16,
            lora_alpha=32,
            lora_dropout=0.05,
        )
    )
    assert spec.max_steps is None and spec.learning_rate is None and spec.batch_size is None


def test_validate_tab_reports_a_self_contradiction_with_sorted_bins(services):
    pair = services.store.add_pair(
        [{"role": "user", "content": "Hi?"}], "Hello there, how can I help?", "No.", model_a="m", model_b="m"
    )
    services.store.add_preference(pair, "A", annotator="ann", shown_left="A")
    services.store.add_preference(pair, "B", annotator="ann", shown_left="B")
    for i, words in enumerate((3, 19, 24, 102, 106)):
        other = services.store.add_pair(
            [{"role": "user", "content": f"Q{i}?"}], "word " * words, "Nope, not this.", model_a="m", model_b="m"
        )
        services.store.add_preference(other, "A", annotator="ann", shown_left="A")
    summary, findings, lengths, _, report = validate.run_validation(services, validate.STORE_DPO, None, 1024, False)
    row = findings[findings["check"] == "self_contradiction"].iloc[0]
    assert f"pair {pair}: ann said A then B" in row["examples"]
    assert [float(b) for b in lengths["sort"]] == sorted(float(b) for b in lengths["sort"])
