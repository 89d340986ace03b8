"""Train tab: start DPO / KTO / IPO / ORPO / SimPO runs, watch them live, cancel, resume, sweep beta, merge.

Layout in `build` (the form is `train_form`'s, from RunSpec's metadata), plain handlers (testable without a
browser), events in `wire` (the run comparison is a `gr.render` block). Runs go through `services.runs`; the plots
read the run folder on a `gr.Timer`, so nothing depends on a browser staying connected, and the app can restart.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..services import training
from ..services.container import Services
from . import train_live
from .common import acting_for, on, with_progress
from .train_capabilities import (  # noqa: F401  (re-exported for tests and callers)
    capabilities_button_label,
    capabilities_markdown,
    capability_controls,
    check_capabilities,
)
from .train_form import (
    FORM_INPUTS,
    data_kind_changed,
    form_controls,
    form_lists,
    method_changed,
    show_command,
    start_controls,
)
from .train_runs import (  # noqa: F401  (the run list and live view; re-exported for tests and callers)
    BEFORE_AFTER_HEADERS,
    BEFORE_AFTER_WIDTHS,
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

REMEMBERED_RUN_KEY = "alignstudio-train-run"  # localStorage key of the run this browser last looked at


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
    cap_tasks: gr.Textbox
    cap_limit: gr.Textbox
    cap_start: gr.Button
    cap_result: gr.Markdown
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
    snapshots_seen: gr.State  # the snapshot paths listed last (`form_lists`): a newer export gets chosen

    def __getattr__(self, name: str):  # view.<RunSpec field>: that field's control
        try:
            return self.__dict__["settings"][name]
        except KeyError:
            raise AttributeError(name) from None

    def actions(self) -> list:
        """The run actions, in `train_runs.ACTIONS` order."""
        return [self.cancel, self.resume, self.merge, self.eval_start]

    def form(self) -> dict:
        """The new-run form's controls by the name its values go under (RunSpec fields, then FORM_INPUTS)."""
        return dict(self.settings) | {name: getattr(self, name) for name in FORM_INPUTS}

    def live_outputs(self) -> list:
        names = ("status", "diagnostics", "before_after", "calibration", "plot_loss", "plot_accuracy", "plot_margins")
        return [
            getattr(self, name)
            for name in (*names, "plot_rewards", "plot_kl", "plot_lr", "plot_throughput", "log", "cap_result")
        ]


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
            column_widths=BEFORE_AFTER_WIDTHS,
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
        c |= capability_controls()
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
            parts = form_controls(services) | start_controls()
        with gr.Column(scale=5):
            names = run_names(services)
            parts |= _run_controls(services, names) | _plots() | _comparison(services, names)
            train_live.panel(services)  # live sessions' curves across bursts (wired by itself)
            with gr.Accordion("Log", open=False):
                parts["log"] = gr.Textbox(
                    lines=12, max_lines=30, label="log.txt (last lines)", interactive=False, elem_id="train-log"
                )
    return TrainView(
        **parts,
        timer=gr.Timer(POLL_S),
        remembered=gr.BrowserState(None, storage_key=REMEMBERED_RUN_KEY),
        snapshots_seen=gr.State([]),
    )


# -- handlers (plain functions) ------------------------------------------------------------------------


def start_run(services: Services, override: bool, values: dict) -> tuple:
    """Start: the form's values (keyed as `TrainView.form`) as one queued run."""
    values = dict(values)
    name = values.pop("run_name", None)
    spec = training.spec_from_form(values)
    name = services.runs.start(spec, name, override)
    return _after_change(services, name, f"Queued **{name}** ({spec.label}).")


def sweep_runs(services: Services, override: bool, betas_text: str, values: dict) -> tuple:
    """Queue beta sweep: one run per beta listed, the form's values otherwise."""
    betas = training.parse_betas(betas_text)
    values = dict(values)
    name = values.pop("run_name", None)
    names = services.runs.sweep(training.spec_from_form(values), betas, name, override)
    table, run_update, compare_update, _ = _after_change(services, names[0], "")
    compare_update = gr.update(choices=run_names(services), value=names)
    note = f"Queued {len(names)} runs (one at a time): " + ", ".join(f"**{n}**" for n in names)
    return table, run_update, compare_update, note


def _after_change(services: Services, selected: str, note: str) -> tuple:
    names = run_names(services)
    return (run_table(services), gr.update(choices=names, value=selected), gr.update(choices=names), note)


# -- events -------------------------------------------------------------------------------------------------


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
    on(
        view.cap_start.click,
        lambda n, tasks, limit: check_capabilities(services, n, tasks, limit),
        [view.run, view.cap_tasks, view.cap_limit],
        [view.cap_result],
        api_name="train_check_capabilities",
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
    lists = [view.model, view.snapshot, view.snapshots_seen]
    restored = [view.runs, view.run, view.compare_runs, *live, *buttons]
    on(
        view.refresh.click,
        lambda n, *lv: (*restore(services, n), *form_lists(services, *lv)),
        [view.run, *lists],
        [*restored, *lists],
    )
    # page load: the run this browser looked at last (or the newest running one) with its live plots, and
    # every list as it is now; opening the tab refreshes the lists and keeps the selection
    if demo is not None:
        on(
            demo.load,
            lambda n, *lv: (*restore(services, n), *form_lists(services, *lv)),
            [view.remembered, *lists],
            [*restored, *lists],
            api_name=False,
            show_progress="hidden",
        )
    if tab is not None:
        on(
            tab.select,
            lambda n, *lv: (*run_lists(services, n), *form_lists(services, *lv)),
            [view.run, *lists],
            [view.runs, view.run, view.compare_runs, *lists],
            api_name=False,
            show_progress="hidden",
        )
