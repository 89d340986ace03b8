"""The Train tab: layout builds with stable elem_ids; handlers are plain functions (stand-in worker)."""

import json
import math

import gradio as gr
import pytest
from servers import ROOT

from alignstudio.core.errors import UserError
from alignstudio.services import training
from alignstudio.services.training import spec_from_form
from alignstudio.training.diagnostics import LN2
from alignstudio.training.run_folder import RunStatus
from alignstudio.ui import train

PAIRS = str(ROOT / "data" / "example_preferences.jsonl")


def form(**kw):
    values = dict(
        method="dpo",
        loss_type=["sigmoid"],
        model="smollm2",
        data_kind="file",
        snapshot=None,
        data_file=PAIRS,
        beta=0.1,
        learning_rate=5e-5,
        max_steps=4,
        num_train_epochs=1.0,
        batch_size=2,
        grad_accum=1,
        max_length=64,
        seed=42,
        label_smoothing=0.0,
        full=False,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        heldout_fraction=0.2,
        early_stopping=True,
        report_to=[],
        run_name="",
    )
    values.update(kw)
    return values


def spec_of(values):
    """What Start makes of the form's values (the run name is not a setting)."""
    return spec_from_form({k: v for k, v in values.items() if k != "run_name"})


def test_tab_builds_with_stable_elem_ids(services):
    with gr.Blocks() as demo:
        view = train.build(services)
        train.wire(view, services, demo)
    ids = {c.elem_id for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    for needed in (
        "train-start",
        "train-cancel",
        "train-resume",
        "train-sweep",
        "train-method",
        "train-beta",
        "train-runs",
        "train-run",
        "train-status",
        "train-diagnostics",
        "train-plot-loss",
        "train-compare-runs",
        "train-data-file",
        "train-snapshot",
        "train-merge",
    ):
        assert needed in ids, needed
    assert isinstance(view.timer, gr.Timer)


def test_spec_from_form_validates(tmp_path):
    spec = spec_of(form(method="ipo", loss_type=[]))
    assert spec.method == "dpo" and spec.loss_type == ["ipo"] and spec.max_steps == 4
    assert spec_of(form(loss_type=["sigmoid", "sft"])).loss_type == ["sigmoid", "sft"]
    assert spec_of(form(method="orpo", loss_type=["sigmoid"])).loss_type == ["orpo"]
    assert spec_of(form(max_steps=None)).max_steps is None
    with pytest.raises(UserError, match="does not exist"):
        spec_of(form(data_file=str(tmp_path / "missing.jsonl")))
    with pytest.raises(UserError, match="snapshot"):
        spec_of(form(data_kind="snapshot"))
    with pytest.raises(UserError, match="beta"):
        spec_of(form(beta=0))
    with pytest.raises(UserError, match="whole number"):
        spec_of(form(batch_size=2.5))


def test_method_change_follows_loss_choices():
    loss, beta = train.method_changed("kto")
    assert loss["choices"] == [("kto", "kto"), ("apo_zero_unpaired", "apo_zero_unpaired")] or list(loss["choices"]) == [
        "kto",
        "apo_zero_unpaired",
    ]
    assert loss["value"] == ["kto"] and beta["value"] == 0.1
    loss, beta = train.method_changed("simpo")
    assert loss["interactive"] is False and beta["value"] == 2.0


def test_start_cancel_resume_and_live_view(services):
    table, run_update, _, note = train.start_run(services, False, form(run_name="ui-run", data_file=PAIRS))
    assert "ui-run" in note and run_update["value"] == "ui-run" and "ui-run" in list(table["run"])
    services.runs.manager.wait("ui-run", timeout=20)
    out = train.run_view(services, "ui-run")
    status_md, diag_md, loss_plot = out[0], out[1], out[4]
    assert "SUCCEEDED" in status_md
    assert set(loss_plot["series"]) == {"loss", train.HELDOUT, train.START}  # the ln(2) reference line
    assert math.isclose(loss_plot[loss_plot["series"] == train.START]["value"].iloc[0], LN2)
    # the stand-in's one step at loss 0.69 (= ln 2) learned nothing, and the tab says so
    assert "Nothing learned" in diag_md and "No warning signs" not in diag_md
    with pytest.raises(UserError):
        train.cancel_run(services, "ui-run")
    with pytest.raises(UserError, match="choose a run"):
        train.resume_run(services, "")
    assert train.run_view(services, None)[0] == "Choose a run."


def test_sweep_and_compare(services):
    table, _, compare, note = train.sweep_runs(services, False, "0.05, 0.2", form(run_name="sw"))
    assert compare["value"] == ["sw-beta0.05", "sw-beta0.2"] and "Queued 2 runs" in note
    for name in compare["value"]:
        services.runs.manager.wait(name, timeout=20)
    frame = train.compare_frame(services, compare["value"], "loss")
    assert set(frame["series"]) == {"sw-beta0.05", "sw-beta0.2"}  # sweep names already carry the beta
    _, run_update, _, note = train.start_run(services, False, form(run_name="plain"))
    assert run_update["value"] == "plain" and "Queued **plain**" in note
    services.runs.manager.wait("plain", timeout=20)
    assert set(train.compare_frame(services, ["plain"], "loss")["series"]) == {"plain (beta=0.1)"}
    assert train.compare_frame(services, ["nope"], "loss").empty
    with pytest.raises(UserError, match="numbers"):
        train.sweep_runs(services, False, "0.1, lots", form())
    polled = train.poll(services, "sw-beta0.05")
    assert len(polled) == 14 == 1 + train.LIVE_VIEW_OUTPUTS and len(polled[0]) == 3
    # a tick with nothing selected (one sent before the page load restored a run) leaves the view alone
    ticked = train.tick(services, None)
    assert (
        len(ticked) == 18
        and len(ticked[0]) == 3
        and all(isinstance(u, dict) and u.get("__type__") == "update" and len(u) == 1 for u in ticked[1:])
    )
    assert len(train.tick(services, "sw-beta0.05")) == 18


def test_metric_frames_cover_every_plot():
    rows = [
        {
            "step": 1,
            "loss": LN2,
            "rewards/accuracies": 0.0,
            "rewards/margins": 0.0,
            "rewards/chosen": 0.0,
            "rewards/rejected": 0.0,
            "learning_rate": 1e-3,
            "tokens_per_s": 100.0,
        },
        {
            "step": 2,
            "loss": 0.6,
            "rewards/accuracies": 1.0,
            "rewards/margins": 0.2,
            "rewards/chosen": 0.1,
            "rewards/rejected": -0.1,
            "learning_rate": 5e-4,
            "tokens_per_s": 120.0,
            "kl": None,
        },
    ]
    frames = train.metric_frames(rows, LN2)
    assert set(frames) == {"loss", "accuracy", "margins", "rewards", "kl", "lr", "throughput"}
    assert set(frames["rewards"]["series"]) == {"chosen", "rejected"} and len(frames["kl"]) == 0
    kto = train.metric_frames([{"step": 1, "loss": 0.5, "kl": 0.0}], 0.5)
    assert set(kto["loss"]["series"]) == {"loss", train.HELDOUT, train.START} and len(kto["kl"]) == 1
    # a multi-series plot always gets every series name (Gradio fixes the colours on the first draw)
    orpo = train.metric_frames([{"step": 1, "loss": 10.8}], None)
    assert set(orpo["loss"]["series"]) == {"loss", train.HELDOUT, train.START}
    assert orpo["loss"][orpo["loss"]["series"] == train.START]["value"].isna().all()
    empty = train.metric_frames([], None)
    assert set(empty["rewards"]["series"]) == {"chosen", "rejected"} and empty["rewards"]["value"].isna().all()
    status = train.status_markdown(
        training.LiveRun(
            "r",
            RunStatus(state="failed", error="boom", error_tail="Traceback\nValueError"),
            spec_of(form()),
            rows,
            "",
            None,
        )
    )
    assert "**Error:** boom" in status and "ValueError" in status


def test_validation_errors_block_training_unless_overridden(services, tmp_path):
    bad = tmp_path / "identical.jsonl"
    bad.write_text(json.dumps({"prompt": "q?", "chosen": "same words here", "rejected": "same words here"}) + "\n")
    with pytest.raises(UserError, match="validation error"):
        train.start_run(services, False, form(run_name="blocked", data_file=str(bad)))
    assert "blocked" not in train.run_names(services)
    train.start_run(services, True, form(run_name="forced", data_file=str(bad)))
    assert "forced" in train.run_names(services)


def _parsed_back(line: str):
    """The spec `alignstudio train ...` makes of the line, through the real parser."""
    import shlex

    from alignstudio.cli import build_parser
    from alignstudio.cli.train import spec_from_args

    words = shlex.split(line)
    assert words[:2] == ["alignstudio", "train"], line
    return spec_from_args(build_parser().parse_args(words[1:]))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"method": "ipo", "loss_type": []},
        {"method": "simpo", "beta": 2.0, "loss_type": []},
        {
            "method": "kto",
            "loss_type": ["apo_zero_unpaired"],
            "desirable_weight": 1.33,
            "undesirable_weight": 0.75,
            "lr_scheduler": "cosine",
            "weight_decay": 0.01,
            "warmup_steps": "3",
        },
        {
            "loss_type": ["sigmoid", "sft"],
            "loss_weights": "1, 0.25",
            "learning_rate": "1e-4",
            "num_train_epochs": "2.5",
            "max_steps": "",
            "batch_size": "",
            "full": True,
            "early_stopping": False,
            "precompute_ref_log_probs": False,
            "report_to": ["tensorboard"],
            "lora_target_modules": "q_proj, v_proj",
            "register_as": "my model",
            "precision": "fp32",
            "label_smoothing": 0.1,
        },
    ],
)
def test_the_command_line_shown_parses_back_to_the_forms_spec(changes):
    values = form(**changes)
    spec = spec_of(values)
    line = train.show_command(values)
    assert _parsed_back(line) == spec, line
    words = line.split()
    assert "--data" in words and "--seed" not in words and "--lora-r" not in words  # defaults are left out


def test_the_command_line_names_only_what_differs_from_the_flags_defaults():
    from alignstudio.training.spec import RunSpec

    assert training.command_line(RunSpec(data="/d.jsonl")) == "alignstudio train --method dpo --data /d.jsonl"
    line = training.command_line(RunSpec(data="/d.jsonl", method="ipo", num_train_epochs=2, early_stopping=False))
    assert line == "alignstudio train --method ipo --data /d.jsonl --num-train-epochs 2.0 --no-early-stopping"


def test_snapshot_picker_moves_to_a_snapshot_exported_after_the_last_listing(services):
    from alignstudio.services.data.snapshots import export_snapshot

    def label(prompt: str) -> None:
        pair = services.store.add_pair(
            [{"role": "user", "content": prompt}], "Hello there, friend.", "No.", model_a="m", model_b="m"
        )
        services.store.add_preference(pair, "A", annotator="ann", shown_left="A")

    label("Hi?")
    export_snapshot(services.store, services.workspace, "dpo")
    _, first, seen = train.form_lists(services, None, None, [])
    older = first["value"]
    assert older and seen == [older]
    assert "value" not in train.form_lists(services, None, older, seen)[1]  # nothing new: the choice stays
    label("Hello?")
    export_snapshot(services.store, services.workspace, "dpo")  # a newer export (e.g. in the Data tab)
    _, listed, seen = train.form_lists(services, None, older, seen)
    assert listed["value"] != older and listed["value"] == seen[0] and older in seen
    # a person who then picks the older one keeps it at the next listing
    assert "value" not in train.form_lists(services, None, older, seen)[1]


def test_a_reward_run_shows_no_beta_in_its_model_card():
    from alignstudio.training.model_card import render

    spec = {"method": "reward", "beta": 0.1, "loss_type": ["sigmoid"], "lora_r": 16}
    text = render({"run": "rm", "method": "reward", "spec": spec, "base_model": {"name": "tiny"}}, adapter=True)
    assert "| beta |" not in text and "reward model" in text
    dpo = render({"run": "p", "method": "dpo", "spec": spec | {"method": "dpo"}, "base_model": {}}, adapter=True)
    assert "| beta | 0.1 |" in dpo
