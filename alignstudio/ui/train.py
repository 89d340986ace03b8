"""Train tab: start DPO / KTO / IPO / ORPO / SimPO runs, watch them live, cancel, resume, sweep beta, merge.

Layout in `build` (the new-run form's controls take their defaults, labels, hints and ranges from the run
settings, `services.training.form_settings()`), plain handlers (values in, values out; testable without a
browser), events in `wire` (the one exception: the run comparison is a `gr.render` block, redrawn per
selection). Operations and rules go through `services.training`; the plots read the run folder on a
`gr.Timer`, so nothing depends on a browser staying connected, and the app can restart while a run goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..services import training
from ..services.container import Services
from .common import acting_for, on, with_progress
from .fields import optional_number_box
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
# The form's run settings: RunSpec field -> the TrainView attribute holding its control (the values reach the
# handlers as a dict keyed by field name), plus the form's own inputs (where the data is; the run's name).
SPEC_CONTROLS = {
    "method": "method",
    "loss_type": "loss_type",
    "model": "model",
    "beta": "beta",
    "learning_rate": "learning_rate",
    "max_steps": "max_steps",
    "num_train_epochs": "epochs",
    "batch_size": "batch_size",
    "grad_accum": "grad_accum",
    "max_length": "max_length",
    "seed": "seed",
    "label_smoothing": "label_smoothing",
    "full": "full",
    "lora_r": "lora_r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "heldout_fraction": "heldout_fraction",
    "early_stopping": "early_stopping",
    "report_to": "report_to",
}
FORM_INPUTS = ("data_kind", "snapshot", "data_file", "run_name")


@dataclass
class TrainView:
    method: gr.Dropdown
    loss_type: gr.Dropdown
    model: gr.Dropdown
    data_kind: gr.Radio
    snapshot: gr.Dropdown
    data_file: gr.Textbox
    beta: gr.Number
    learning_rate: gr.Textbox
    max_steps: gr.Textbox
    epochs: gr.Textbox
    batch_size: gr.Textbox
    grad_accum: gr.Number
    max_length: gr.Number
    seed: gr.Number
    label_smoothing: gr.Number
    full: gr.Checkbox
    lora_r: gr.Number
    lora_alpha: gr.Number
    lora_dropout: gr.Number
    heldout_fraction: gr.Number
    early_stopping: gr.Checkbox
    report_to: gr.CheckboxGroup
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

    def actions(self) -> list:
        """The run actions, in `train_runs.ACTIONS` order."""
        return [self.cancel, self.resume, self.merge, self.eval_start]

    def form(self) -> dict:
        """The new-run form's controls by the name its values go under (RunSpec fields, then FORM_INPUTS)."""
        controls = {field: getattr(self, attr) for field, attr in SPEC_CONTROLS.items()}
        return controls | {name: getattr(self, name) for name in FORM_INPUTS}

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


def _number(setting, elem_id: str, **kw) -> gr.Number:
    """A number control with the setting's default, label, hint and offered range."""
    if setting.step is not None:
        kw["step"] = setting.step
    return gr.Number(
        setting.default,
        label=setting.label,
        info=setting.info,
        minimum=setting.minimum,
        maximum=setting.maximum,
        precision=0 if setting.kind == "int" else None,
        elem_id=elem_id,
        **kw,
    )


def _optional(setting, elem_id: str) -> gr.Textbox:
    """A number that may stay empty (= chosen from the data, or by the epochs)."""
    return optional_number_box(setting.label, setting.empty, elem_id)


def _checkbox(setting, elem_id: str) -> gr.Checkbox:
    return gr.Checkbox(setting.default, label=setting.label, elem_id=elem_id)


def _form(services: Services) -> dict:
    """The new-run form: what to train, on what data, and the main settings."""
    s = training.form_settings()
    dpo = training.method_form(s["method"].default)
    gr.Markdown("### New run")
    c = {
        "method": gr.Dropdown(
            METHOD_CHOICES, value=s["method"].default, label=s["method"].label, elem_id="train-method"
        ),
        "loss_type": gr.Dropdown(
            dpo.loss_choices,
            value=dpo.loss,
            multiselect=True,
            label=s["loss_type"].label,
            info=s["loss_type"].info,
            elem_id="train-loss-type",
        ),
        "model": gr.Dropdown(
            services.model_names(),
            value=services.default_model,
            label=s["model"].label,
            allow_custom_value=True,
            elem_id="train-model",
        ),
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
    with gr.Row():
        c["beta"] = _number(s["beta"], "train-beta")
        c["learning_rate"] = _optional(s["learning_rate"], "train-lr")
    with gr.Row():
        c["max_steps"] = _optional(s["max_steps"], "train-max-steps")
        c["epochs"] = _optional(s["num_train_epochs"], "train-epochs")
    with gr.Row():
        c["batch_size"] = _optional(s["batch_size"], "train-batch-size")
        c["grad_accum"] = _number(s["grad_accum"], "train-grad-accum")
    with gr.Row():
        c["max_length"] = _number(s["max_length"], "train-max-length")
        c["seed"] = _number(s["seed"], "train-seed")
    with gr.Accordion("More settings", open=False):
        c |= _more_settings(s)
    return c


def _more_settings(s: dict) -> dict:
    c = {
        "label_smoothing": _number(s["label_smoothing"], "train-label-smoothing"),
        "full": _checkbox(s["full"], "train-full"),
    }
    with gr.Row():
        c["heldout_fraction"] = _number(s["heldout_fraction"], "train-heldout")
        c["early_stopping"] = _checkbox(s["early_stopping"], "train-early-stopping")
    with gr.Row():
        c["lora_r"] = _number(s["lora_r"], "train-lora-r")
        c["lora_alpha"] = _number(s["lora_alpha"], "train-lora-alpha")
        c["lora_dropout"] = _number(s["lora_dropout"], "train-lora-dropout")
    report = s["report_to"]
    c["report_to"] = gr.CheckboxGroup(
        list(report.choices), value=report.default, label=report.label, info=report.info, elem_id="train-report-to"
    )
    return c


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
