"""Train tab: start DPO / KTO / IPO / ORPO / SimPO runs, watch them live, cancel, resume, sweep beta, merge.

Layout in `build` (the new-run form's controls take their defaults, labels, hints and ranges from the run
settings, `services.training.form_settings()`), plain handlers (values in, values out; testable without a
browser), events in `wire` (the one exception: the run comparison is a `gr.render` block, redrawn per
selection). Operations and rules go through `services.training`; the plots read the run folder on a
`gr.Timer`, so nothing depends on a browser staying connected, and the app can restart while a run goes on.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from itertools import groupby

import gradio as gr
import pandas as pd

from ..services import training
from ..services.container import Services
from .common import acting_for, on, with_progress
from .fields import setting_control
from .train_runs import (  # noqa: F401  (the run list and live view; re-exported for tests and callers)
    BEFORE_AFTER_HEADERS,
    COLORS,
    COMPARE_METRICS,
    EVAL_JUDGES,
    EVAL_PROMPTS,
    HELDOUT,
    LIVE_VIEW_OUTPUTS,
    LOSS_SERIES,
    POLL_S,
    REWARD_SERIES,
    RUN_HEADERS,
    SPLIT_SERIES,
    START,
    _plot,
    before_after_frame,
    cancel_run,
    compare_frame,
    evaluate_against_base,
    merge_run,
    metric_frames,
    pick_from_table,
    placeholder,
    placeholder_calibration,
    poll,
    restore,
    resume_run,
    run_actions,
    run_lists,
    run_names,
    run_rows,
    run_table,
    run_view,
    selected,
    status_markdown,
    tick,
)

METHOD_CHOICES = [
    ("DPO", "dpo"),
    ("IPO (DPO, squared loss)", "ipo"),
    ("KTO (thumbs up/down)", "kto"),
    ("ORPO (no reference)", "orpo"),
    ("SimPO (no reference, length-normalized)", "simpo"),
    ("Reward model (a judge trained from your labels)", "reward"),
]
REMEMBERED_RUN_KEY = "alignstudio-train-run"  # localStorage key of the run this browser last looked at
PREFIX = "train"  # the form's controls are #train-<field> (or the field's control_id)
# The form's inputs besides the run settings: where the data is (RunSpec's `data`), and the run's name.
FORM_INPUTS = ("data_kind", "snapshot", "data_file", "run_name")


@dataclass
class TrainView:
    settings: dict  # RunSpec field -> its control, one per field the form shows (also `view.<field>`)
    data_kind: gr.Radio
    snapshot: gr.Dropdown
    data_file: gr.Textbox
    show_command: gr.Button
    command: gr.Code
    run_name: gr.Textbox
    override: gr.Checkbox
    start: gr.Button
    sweep_betas: gr.Textbox
    sweep: gr.Button
    message: gr.Markdown
    runs: gr.Dataframe
    run: gr.Dropdown
    cancel: gr.Button
    resume: gr.Button
    merge: gr.Button
    refresh: gr.Button
    status: gr.Markdown
    diagnostics: gr.Markdown
    before_after: gr.Dataframe
    eval_judge: gr.Dropdown
    eval_force: gr.Checkbox
    eval_start: gr.Button
    eval_summary: gr.Markdown
    calibration: gr.LinePlot
    plot_loss: gr.LinePlot
    plot_accuracy: gr.LinePlot
    plot_margins: gr.LinePlot
    plot_rewards: gr.LinePlot
    plot_kl: gr.LinePlot
    plot_lr: gr.LinePlot
    plot_throughput: gr.LinePlot
    compare_runs: gr.Dropdown
    compare_metric: gr.Radio
    compare_refresh: gr.Button
    log: gr.Textbox
    timer: gr.Timer
    remembered: gr.BrowserState

    def __getattr__(self, name: str):
        controls = self.__dict__.get("settings") or {}
        if name in controls:
            return controls[name]
        raise AttributeError(name)

    def actions(self) -> list:
        """The run actions, in `train_runs.ACTIONS` order."""
        return [self.cancel, self.resume, self.merge, self.eval_start]

    def form(self) -> dict:
        """The new-run form's controls by the name its values go under (RunSpec fields, then FORM_INPUTS)."""
        return dict(self.settings) | {name: getattr(self, name) for name in FORM_INPUTS}

    def live_outputs(self) -> list:
        return [
            self.status,
            self.diagnostics,
            self.before_after,
            self.calibration,
            self.plot_loss,
            self.plot_accuracy,
            self.plot_margins,
            self.plot_rewards,
            self.plot_kl,
            self.plot_lr,
            self.plot_throughput,
            self.log,
        ]


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


def _form(services: Services) -> dict:
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


def _start_controls() -> dict:
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


def _run_controls(services: Services, names: list[str]) -> dict:
    """The run table, the selected run and the actions that apply to it."""
    c = {
        "runs": gr.Dataframe(
            run_table(services), interactive=False, label="Runs (newest first)", elem_id="train-runs", max_height=260
        )
    }
    with gr.Row():
        c["run"] = gr.Dropdown(names, value=names[0] if names else None, label="Run", scale=3, elem_id="train-run")
        # clickable only where they apply to the selected run (set on load and selection)
        c["cancel"] = gr.Button("Cancel", size="sm", variant="stop", elem_id="train-cancel", interactive=False)
        c["resume"] = gr.Button("Resume", size="sm", elem_id="train-resume", interactive=False)
        c["merge"] = gr.Button("Merge adapter", size="sm", elem_id="train-merge", interactive=False)
        c["refresh"] = gr.Button("Refresh", size="sm", elem_id="train-refresh")
    c["status"] = gr.Markdown(elem_id="train-status")
    c["diagnostics"] = gr.Markdown(elem_id="train-diagnostics")
    with gr.Accordion("Before / after: held-out prompts, base vs trained (same seed)", open=True):
        c["before_after"] = gr.Dataframe(
            pd.DataFrame(columns=BEFORE_AFTER_HEADERS),
            interactive=False,
            wrap=True,
            elem_id="train-before-after",
            max_height=420,
        )
        with gr.Row():
            c["eval_judge"] = gr.Dropdown(EVAL_JUDGES, value="auto", label="Judge", scale=3, elem_id="train-eval-judge")
            c["eval_force"] = gr.Checkbox(
                False, label="Use it even if it is at chance against people", scale=2, elem_id="train-eval-force"
            )
            c["eval_start"] = gr.Button(
                f"Evaluate against the base ({EVAL_PROMPTS} held-out prompts, both orders)",
                scale=3,
                elem_id="train-eval",
                interactive=False,
            )
        c["eval_summary"] = gr.Markdown(elem_id="train-eval-summary")
    return c


def _plots() -> dict:
    """The live plots of the selected run."""
    c = {}
    with gr.Row():
        c["plot_loss"] = _plot(
            "Loss: training, held-out (orange), and its start (grey, ln 2 for DPO)",
            "train-plot-loss",
            "loss",
            LOSS_SERIES,
        )
        c["plot_accuracy"] = _plot(
            "Reward accuracy: training and held-out", "train-plot-accuracy", "accuracy", SPLIT_SERIES, y_lim=[0, 1]
        )
    with gr.Row():
        c["plot_margins"] = _plot(
            "Reward margin (chosen - rejected): training and held-out", "train-plot-margins", "margin", SPLIT_SERIES
        )
        c["plot_rewards"] = _plot("Chosen and rejected rewards", "train-plot-rewards", "reward", REWARD_SERIES)
    c["calibration"] = gr.LinePlot(
        placeholder_calibration(),
        x="predicted",
        y="observed",
        color="series",
        color_map={"reward model": COLORS["train"], "perfectly calibrated": COLORS[START]},
        title="Reward model calibration on held-out pairs: predicted vs observed P(chosen wins)",
        x_title="predicted",
        y_title="observed",
        height=240,
        elem_id="train-plot-calibration",
        visible=False,
    )
    with gr.Row():
        c["plot_kl"] = _plot("KTO: KL estimate", "train-plot-kl", "kl")
        c["plot_lr"] = _plot("Learning rate", "train-plot-lr", "lr")
        c["plot_throughput"] = _plot("Throughput", "train-plot-throughput", "tokens/s")
    return c


def _comparison(services: Services, names: list[str]) -> dict:
    """Several runs' curves in one plot (e.g. a beta sweep)."""
    with gr.Accordion("Compare runs (e.g. a beta sweep)", open=False):
        with gr.Row():
            compare_runs = gr.Dropdown(names, multiselect=True, label="Runs", scale=3, elem_id="train-compare-runs")
            compare_metric = gr.Radio(
                COMPARE_METRICS, value="loss", label="Metric", scale=2, elem_id="train-compare-metric"
            )
            compare_refresh = gr.Button("Redraw", size="sm", scale=1, elem_id="train-compare-refresh")

        # Run names are the series here, so the plot is drawn afresh for each selection (a live
        # LinePlot keeps the colour domain it was first drawn with).
        @gr.render(
            inputs=[compare_runs, compare_metric],
            triggers=[compare_runs.change, compare_metric.change, compare_refresh.click],
        )
        def _compare(selected, metric, request: gr.Request):
            with acting_for(request):  # a render function is not wrapped by `on`: it says who calls itself
                frame = compare_frame(services, selected, metric)
            gr.LinePlot(
                frame if len(frame) else None,
                x="step",
                y="value",
                color="series",
                title="Runs compared",
                x_title="step",
                y_title=metric,
                height=280,
                elem_id="train-plot-compare",
            )

    return {"compare_runs": compare_runs, "compare_metric": compare_metric, "compare_refresh": compare_refresh}


def build(services: Services) -> TrainView:
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            parts = _form(services) | _start_controls()
        with gr.Column(scale=5):
            names = run_names(services)
            parts |= _run_controls(services, names) | _plots() | _comparison(services, names)
            with gr.Accordion("Log", open=False):
                parts["log"] = gr.Textbox(
                    lines=12, max_lines=30, label="log.txt (last lines)", interactive=False, elem_id="train-log"
                )
    return TrainView(**parts, timer=gr.Timer(POLL_S), remembered=gr.BrowserState(None, storage_key=REMEMBERED_RUN_KEY))


# -- handlers (plain functions) ------------------------------------------------------------------------


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


def start_run(services: Services, override: bool, values: dict) -> tuple:
    """Start: the form's values (keyed as `TrainView.form`) as one queued run."""
    values = dict(values)
    name = values.pop("run_name", None)
    spec = training.spec_from_form(values)
    name = training.start(services, spec, name, override)
    return _after_change(services, name, f"Queued **{name}** ({spec.label}).")


def show_command(values: dict) -> str:
    """Show command: the `alignstudio train ...` line that makes the run the form describes."""
    values = dict(values)
    values.pop("run_name", None)
    return training.command_line(training.spec_from_form(values))


def sweep_runs(services: Services, override: bool, betas_text: str, values: dict) -> tuple:
    """Queue beta sweep: one run per beta listed, the form's values otherwise."""
    betas = training.parse_betas(betas_text)
    values = dict(values)
    name = values.pop("run_name", None)
    names = training.sweep(services, training.spec_from_form(values), betas, name, override)
    table, run_update, compare_update, _ = _after_change(services, names[0], "")
    compare_update = gr.update(choices=run_names(services), value=names)
    note = f"Queued {len(names)} runs (one at a time): " + ", ".join(f"**{n}**" for n in names)
    return table, run_update, compare_update, note


def _after_change(services: Services, selected: str, note: str) -> tuple:
    names = run_names(services)
    return (run_table(services), gr.update(choices=names, value=selected), gr.update(choices=names), note)


# -- events -------------------------------------------------------------------------------------------------


def form_lists(services: Services, model: str | None, snapshot: str | None) -> tuple:
    """The base models and snapshots as they are now (page load, tab open, Refresh); with no snapshot chosen
    (or the chosen one gone) the newest is chosen."""
    snapshots = snapshot_choices(services)
    paths = [path for _, path in snapshots]
    return (
        gr.update(choices=services.model_names()),
        gr.update(choices=snapshots)
        if snapshot in paths
        else gr.update(choices=snapshots, value=paths[0] if paths else None),
    )


def wire(view: TrainView, services: Services, demo: gr.Blocks | None = None, tab: gr.Tab | None = None) -> None:
    fields, form = list(view.form()), list(view.form().values())
    live = view.live_outputs()
    buttons = view.actions()
    polled = [view.runs, *live, *buttons]
    changed = [view.runs, view.run, view.compare_runs, view.message]
    on(view.method.change, method_changed, [view.method], [view.loss_type, view.beta])
    on(view.data_kind.change, data_kind_changed, [view.data_kind], [view.snapshot, view.data_file])
    on(
        view.start.click,
        lambda o, *f: start_run(services, o, dict(zip(fields, f))),
        [view.override, *form],
        changed,
        api_name="train_start",
    )
    on(
        view.sweep.click,
        lambda o, b, *f: sweep_runs(services, o, b, dict(zip(fields, f))),
        [view.override, view.sweep_betas, *form],
        changed,
        api_name="train_sweep",
    )
    on(
        view.show_command.click,
        lambda *f: show_command(dict(zip(fields, f))),
        form,
        [view.command],
        api_name="train_command",
    )
    on(view.cancel.click, lambda n: cancel_run(services, n), [view.run], [view.message])
    on(view.resume.click, lambda n: resume_run(services, n), [view.run], [view.message])
    on(view.merge.click, lambda n: merge_run(services, n), [view.run], [view.message])

    eval_inputs = [view.run, view.eval_judge, view.eval_force]
    view.eval_start.click(
        with_progress(
            lambda *v, progress: evaluate_against_base(services, *v, progress=progress),
            eval_inputs,
            [view.eval_summary],
        ),
        eval_inputs,
        [view.eval_summary],
        api_name="train_evaluate_against_base",
        concurrency_limit=1,
    )
    on(view.run.change, lambda n: selected(services, n), [view.run], [*live, *buttons, view.remembered])
    view.runs.select(pick_from_table, view.runs, view.run, api_name=False)
    on(
        view.timer.tick,
        lambda n: tick(services, n),
        [view.run],
        polled,
        show_progress="hidden",
        concurrency_limit=None,
        api_name=False,
    )
    lists = [view.model, view.snapshot]
    restored = [view.runs, view.run, view.compare_runs, *live, *buttons]
    on(
        view.refresh.click,
        lambda n, m, s: (*restore(services, n), *form_lists(services, m, s)),
        [view.run, view.model, view.snapshot],
        [*restored, *lists],
    )
    # page load: the run this browser looked at last (or the newest running one) with its live plots, and
    # every list as it is now; opening the tab refreshes the lists and keeps the selection
    if demo is not None:
        on(
            demo.load,
            lambda n, m, s: (*restore(services, n), *form_lists(services, m, s)),
            [view.remembered, view.model, view.snapshot],
            [*restored, *lists],
            api_name=False,
            show_progress="hidden",
        )
    if tab is not None:
        on(
            tab.select,
            lambda n, m, s: (*run_lists(services, n), *form_lists(services, m, s)),
            [view.run, view.model, view.snapshot],
            [view.runs, view.run, view.compare_runs, *lists],
            api_name=False,
            show_progress="hidden",
        )
