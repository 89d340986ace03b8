"""Training settings are written once, in RunSpec: the CLI's flags (train, rounds, queue) and the Train tab's
controls take their defaults, labels and ranges from it, and a drift between them fails here."""

import argparse

import gradio as gr
import pytest
from servers import ROOT

from alignstudio.cli import build_parser
from alignstudio.cli.train import spec_from_args
from alignstudio.core.errors import UserError
from alignstudio.services import training
from alignstudio.training.spec import SWEEP_BETAS, RunSpec, settings
from alignstudio.ui import train

PAIRS = str(ROOT / "data" / "example_preferences.jsonl")
# flags that deliberately differ from the spec: --method and --data must be given (no default)
REQUIRED = {"method", "data"}


def _spec_flags(command: str) -> dict[str, argparse.Action]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest: a for a in sub._actions if a.dest in settings()}


def test_train_flags_have_the_spec_defaults_help_and_types():
    flags = _spec_flags("train")
    assert len(flags) >= 25, sorted(flags)
    for name, action in flags.items():
        setting = settings()[name]
        if name in REQUIRED:
            assert action.default is None, name
            continue
        assert action.default == setting.default, name
        assert setting.help in action.help, name
        if setting.kind in ("int", "float"):
            assert action.type is {"int": int, "float": float}[setting.kind], name
    # one name per concept (the field's), the older short flags kept as aliases
    assert flags["learning_rate"].option_strings == ["--learning-rate", "--lr"]
    assert flags["num_train_epochs"].option_strings == ["--num-train-epochs", "--epochs"]


@pytest.mark.parametrize("command, names", [("rounds", {"beta", "max_steps", "learning_rate", "batch_size"})])
def test_rounds_takes_its_training_flags_from_the_spec(command, names):  # queue reads beta from the run's spec
    flags = _spec_flags(command)
    assert names <= set(flags)
    for name in names:
        assert (
            flags[name].default == RunSpec.default(name)
            and flags[name].type is {"int": int, "float": float}[settings()[name].kind]
        )


def test_the_cli_defaults_make_the_spec_defaults(tmp_path):
    args = build_parser().parse_args(["train", "--method", "dpo", "--data", PAIRS])
    assert spec_from_args(args) == RunSpec(data=str(ROOT / "data" / "example_preferences.jsonl"))
    args = build_parser().parse_args(
        [
            "train",
            "--method",
            "dpo",
            "--data",
            PAIRS,
            "--loss-type",
            "sigmoid,sft",
            "--loss-weights",
            "1,0.5",
            "--lr",
            "1e-4",
            "--no-early-stopping",
        ]
    )
    spec = spec_from_args(args)
    assert spec.loss_type == ["sigmoid", "sft"] and spec.loss_weights == [1.0, 0.5]
    assert spec.learning_rate == 1e-4 and spec.early_stopping is False
    with pytest.raises(UserError, match="loss_weights must be comma-separated numbers"):
        spec_from_args(
            build_parser().parse_args(["train", "--method", "dpo", "--data", PAIRS, "--loss-weights", "1,x"])
        )


def test_the_train_tab_controls_show_the_spec_defaults_labels_and_ranges(services):
    with gr.Blocks():
        view = train.build(services)
    controls = view.form()
    checked = 0
    for name in view.settings:
        setting, control = settings()[name], controls[name]
        if name in ("method", "model", "loss_type"):
            continue  # a dropdown: the method's choices, the app's default model, the method's default loss
        if setting.empty is not None:
            assert control.value == "" and control.placeholder == setting.empty, name  # empty = the default
        elif setting.kind.startswith("list[") and not setting.choices:
            assert control.value == ", ".join(map(str, setting.default or [])), name
        else:
            assert control.value == setting.default, name
        assert control.label == setting.label, name
        for bound in ("minimum", "maximum"):
            if getattr(setting, bound) is not None and isinstance(control, gr.Number):  # the spec checks the rest
                assert getattr(control, bound) == getattr(setting, bound), (name, bound)
        checked += 1
    assert checked >= 30
    assert controls["method"].value == RunSpec.default("method")
    assert controls["loss_type"].value == training.method_form("dpo").loss == RunSpec(data="d").loss_type
    assert view.sweep_betas.value == training.SWEEP_TEXT
    assert training.parse_betas(training.SWEEP_TEXT) == list(SWEEP_BETAS)


def test_the_form_with_its_defaults_makes_the_spec_defaults():
    values = {name: s.default for name, s in settings().items() if s.ui and name != "data"}
    values |= {"learning_rate": "", "max_steps": "", "num_train_epochs": "", "batch_size": "", "loss_type": ["sigmoid"]}
    spec = training.spec_from_form(values | {"data_kind": "file", "data_file": PAIRS})
    assert spec == RunSpec(data=PAIRS)
    assert training.method_form("simpo").beta == RunSpec.default("beta", "simpo") == 2.0


def test_every_offered_range_is_accepted_by_the_spec():
    for name, setting in settings().items():
        for bound in (setting.minimum, setting.maximum):
            if bound is not None:
                value = int(bound) if setting.kind == "int" else bound
                assert getattr(RunSpec(data="d", **{name: value}), name) == value, name
    for name in ("grad_accum", "max_length", "patience", "lora_r", "lora_alpha", "seed"):  # the bound is the rule
        with pytest.raises(UserError, match=name):
            RunSpec(data="d", **{name: settings()[name].minimum - 1})


def test_from_values_reads_what_a_person_types():
    spec = RunSpec.from_values(
        {
            "data": "d",
            "beta": None,
            "max_steps": " 40 ",
            "learning_rate": "0",
            "batch_size": 0,
            "report_to": "none",
            "loss_type": "sigmoid, sft",
        }
    )
    assert (spec.beta, spec.max_steps, spec.learning_rate, spec.batch_size) == (0.1, 40, None, None)
    assert spec.loss_type == ["sigmoid", "sft"] and spec.report_to == []
    with pytest.raises(UserError, match="no base model"):
        RunSpec.from_values({"data": "d", "model": ""})
    with pytest.raises(UserError, match="max_steps must be a number or empty"):
        RunSpec.from_values({"data": "d", "max_steps": "soon"})
    with pytest.raises(UserError, match="unknown run setting"):
        RunSpec.from_values({"data": "d", "betta": 0.1})


def test_every_exposed_field_has_its_flag_and_its_control(services):
    """A field marked `cli` has an `alignstudio train` flag and one marked `ui` a Train tab control, under the
    field's own name (and the control's id from the field): adding a field to RunSpec exposes it in both."""
    exposed = {name for name, s in settings().items() if s.cli is not None}
    assert exposed == set(settings()), "every run setting has a flag"  # the rule for RunSpec today
    flags = _spec_flags("train")
    for name in exposed:
        assert name in flags and settings()[name].flag in flags[name].option_strings, name
    with gr.Blocks() as demo:
        view = train.build(services)
    ids = {c.elem_id for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    shown = {name for name, s in settings().items() if s.ui}
    assert shown == set(settings()), "every run setting has a control"
    for name in shown - {"data"}:  # the data is a snapshot or a file
        assert name in view.settings and view.form()[name] is getattr(view, name), name
        assert settings()[name].control("train") in ids, name
    assert {"data_kind", "snapshot", "data_file"} <= set(view.form())
    # the ids the browser tests use stay where they were
    for needed in ("train-lr", "train-epochs", "train-max-steps", "train-heldout", "train-batch-size", "train-beta"):
        assert needed in ids, needed
    for name in ("desirable_weight", "undesirable_weight", "lr_scheduler", "weight_decay"):
        assert name in flags and name in view.settings, name
    assert view.lr_scheduler.choices == [(c, c) for c in settings()["lr_scheduler"].choices]
    assert view.weight_decay.minimum == settings()["weight_decay"].minimum == 0.0


def test_the_main_settings_and_the_accordion_follow_the_metadata(services):
    with gr.Blocks():
        view = train.build(services)

    def outer(component, kind):
        while component is not None and not isinstance(component, kind):
            component = component.parent
        return component

    for name, control in view.settings.items():
        accordion = outer(control, gr.Accordion)
        in_more = accordion is not None and accordion.label == "More settings"
        assert in_more == (settings()[name].ui == "more"), name
    # neighbours with the same `row` share a line
    assert outer(view.beta, gr.Row) is outer(view.learning_rate, gr.Row) is not None
    assert outer(view.max_steps, gr.Row) is outer(view.num_train_epochs, gr.Row) is not outer(view.beta, gr.Row)
    assert outer(view.desirable_weight, gr.Row) is outer(view.undesirable_weight, gr.Row) is not None


def test_the_new_flags_reach_the_spec():
    args = build_parser().parse_args(
        [
            "train",
            "--method",
            "kto",
            "--data",
            PAIRS,
            "--desirable-weight",
            "1.5",
            "--undesirable-weight",
            "0.7",
            "--lr-scheduler",
            "cosine",
            "--weight-decay",
            "0.01",
            "--epochs",
            "2",
        ]
    )
    spec = spec_from_args(args)
    assert (spec.desirable_weight, spec.undesirable_weight, spec.lr_scheduler, spec.weight_decay) == (
        1.5,
        0.7,
        "cosine",
        0.01,
    )
    assert spec.num_train_epochs == 2.0
    assert (
        spec_from_args(
            build_parser().parse_args(["train", "--method", "dpo", "--data", PAIRS, "--num-train-epochs", "3"])
        ).num_train_epochs
        == 3.0
    )
    with pytest.raises(UserError, match="lr_scheduler must be one of"):
        spec_from_args(build_parser().parse_args(["train", "--method", "dpo", "--data", PAIRS, "--lr-scheduler", "x"]))
