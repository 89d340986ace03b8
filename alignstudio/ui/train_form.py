"""The Train tab's new-run form: one control per run setting the tab shows, built in one loop from RunSpec's
metadata (`ui` section, `row`, `control_id`; `services.training.form_settings()`), the data picker, and the
`alignstudio train ...` command line that makes the same run. Handlers are plain functions; `train` wires them.
"""

from __future__ import annotations

import contextlib
import time
from itertools import groupby

import gradio as gr

from ..services import training
from ..services.container import Services
from .fields import setting_control

METHOD_CHOICES = [
    ("DPO", "dpo"),
    ("IPO (DPO, squared loss)", "ipo"),
    ("KTO (thumbs up/down)", "kto"),
    ("ORPO (no reference)", "orpo"),
    ("SimPO (no reference, length-normalized)", "simpo"),
    ("Reward model (a judge trained from your labels)", "reward"),
]

PREFIX = "train"  # the form's controls are #train-<field> (or the field's control_id)
# The form's inputs besides the run settings: where the data is (RunSpec's `data`), and the run's name.
FORM_INPUTS = ("data_kind", "snapshot", "data_file", "run_name")


def _method(services: Services, s) -> dict:
    return {"method": gr.Dropdown(METHOD_CHOICES, value=s.default, label=s.label, elem_id=s.control(PREFIX))}


def _loss_type(services: Services, s) -> dict:
    dpo = training.method_form(training.form_settings()["method"].default)
    control = gr.Dropdown(
        dpo.loss_choices, value=dpo.loss, multiselect=True, label=s.label, info=s.info, elem_id=s.control(PREFIX)
    )
    return {"loss_type": control}


def _model(services: Services, s) -> dict:
    control = gr.Dropdown(
        services.model_names(),
        value=services.default_model,
        label=s.label,
        allow_custom_value=True,
        elem_id=s.control(PREFIX),
    )
    return {"model": control}


def _data(services: Services, s) -> dict:
    """The data: a snapshot from the Data tab or a file (`spec_from_form` makes the spec's `data` of them)."""
    return {
        "data_kind": gr.Radio(
            [("Snapshot", "snapshot"), ("File", "file")],
            value="snapshot",
            label="Training data",
            elem_id="train-data-kind",
        ),
        "snapshot": gr.Dropdown(
            snapshot_choices(services), label="Snapshot", allow_custom_value=False, elem_id="train-snapshot"
        ),
        "data_file": gr.Textbox(
            label="File (JSONL / Parquet) or datasets folder",
            visible=False,
            placeholder="data/example_preferences.jsonl",
            elem_id="train-data-file",
        ),
    }


# fields whose control is not the one their kind gets: the method's labelled choices, the method's loss types,
# the app's models, and the data picker
SPECIAL = {"method": _method, "loss_type": _loss_type, "model": _model, "data": _data}


def _section(services: Services, section: str) -> dict:
    """The controls of one form section, in RunSpec's order; neighbours with the same `row` share a line."""
    shown = [s for s in training.form_settings().values() if s.ui == section]
    controls = {}
    for row, group in groupby(shown, key=lambda s: s.row):
        with gr.Row() if row else contextlib.nullcontext():
            for s in group:
                build = SPECIAL.get(s.name)
                controls |= build(services, s) if build else {s.name: setting_control(s, s.control(PREFIX))}
    return controls


def form_controls(services: Services) -> dict:
    """The new-run form: every run setting the tab shows (`ui` in RunSpec), the main ones first, and the
    command line that makes the same run."""
    gr.Markdown("### New run")
    c = _section(services, training.MAIN)
    with gr.Accordion("More settings", open=False):
        c |= _section(services, training.MORE)
    form = {"settings": {name: control for name, control in c.items() if name not in FORM_INPUTS}}
    form |= {name: c[name] for name in FORM_INPUTS if name in c}
    with gr.Accordion("Command line", open=False):
        form["show_command"] = gr.Button("Show command", size="sm", elem_id="train-show-command")
        form["command"] = gr.Code(
            "", language="shell", interactive=False, label="alignstudio train", elem_id="train-command"
        )
    return form


def start_controls() -> dict:
    """Under the form: the run's name, the validation override, Start, and the beta sweep."""
    c = {
        "run_name": gr.Textbox(label="Run name (optional)", elem_id="train-name"),
        "override": gr.Checkbox(False, label="Train even if validation finds errors", elem_id="train-override"),
        "start": gr.Button("Start training", variant="primary", elem_id="train-start"),
    }
    with gr.Row():
        c["sweep_betas"] = gr.Textbox(
            training.SWEEP_TEXT, label="Beta sweep values", scale=3, elem_id="train-sweep-betas"
        )
        c["sweep"] = gr.Button("Queue beta sweep", scale=1, elem_id="train-sweep")
    c["message"] = gr.Markdown(elem_id="train-message")
    return c


def method_changed(method: str) -> tuple:
    """The loss-type picker follows the method (ORPO/SimPO have a single loss), and beta its default."""
    form = training.method_form(method)
    return gr.update(choices=form.loss_choices, value=form.loss, interactive=form.loss_editable), gr.update(
        value=form.beta
    )


def data_kind_changed(kind: str) -> tuple:
    return gr.update(visible=kind == "snapshot"), gr.update(visible=kind == "file")


def snapshot_choices(services: Services) -> list[tuple[str, str]]:
    out = []
    for snap in services.data.snapshots():
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(snap["created"]))
        out.append((f"{snap['kind']} · {snap['rows']} rows · {stamp} · {snap['fingerprint'][:8]}", snap["path"]))
    return out


def show_command(values: dict) -> str:
    """Show command: the `alignstudio train ...` line that makes the run the form describes."""
    values = dict(values)
    values.pop("run_name", None)
    return training.command_line(training.spec_from_form(values))


def form_lists(services: Services, model: str | None, snapshot: str | None, seen: list | None = None) -> tuple:
    """The base models and snapshots as they are now (page load, tab open, Refresh), and the snapshot paths
    listed (for the next call's `seen`). The newest snapshot is chosen when none is chosen, the chosen one is
    gone, or the newest is not among those `seen` at the last listing (a newer export since); otherwise the
    chosen one stays (a person may have picked an older one on purpose)."""
    snapshots = snapshot_choices(services)
    paths = [path for _, path in snapshots]
    newest = paths[0] if paths else None
    exported_since = seen is not None and newest is not None and newest not in seen
    keep = snapshot in paths and not exported_since
    return (
        gr.update(choices=services.model_names()),
        gr.update(choices=snapshots) if keep else gr.update(choices=snapshots, value=newest),
        paths,
    )
