"""Train tab: start DPO / KTO / IPO / ORPO / SimPO runs, watch them live, cancel, resume, sweep beta, merge.

Layout in `build`, plain handlers (values in, values out; testable without a browser), events in `wire`
(the one exception: the run comparison is a `gr.render` block in `build`, redrawn per selection).
Everything goes through `services.runs` (the RunManager); the plots read the run folder on a `gr.Timer`,
so nothing depends on a browser staying connected, and the app can restart while a run goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..core.errors import UserError
from ..services.data.checks import gate_training_data
from ..services.container import Services
from ..training.spec import DPO_LOSS_TYPES, KTO_LOSS_TYPES, RunSpec
from ..training.trackers import TRACKERS
from .common import on, with_progress
from .fields import optional_number, optional_number_box
from .train_runs import (  # noqa: F401  (the run list and live view; re-exported for tests and callers)
    BEFORE_AFTER_HEADERS, COLORS, COMPARE_METRICS, EVAL_JUDGES, EVAL_PROMPTS, HELDOUT, LOSS_SERIES, POLL_S,
    REWARD_SERIES, RUN_HEADERS, SPLIT_SERIES, START, _plot, before_after_frame, cancel_run, compare_frame,
    evaluate_against_base, merge_run, metric_frames, pick_from_table, placeholder, placeholder_calibration, poll,
    restore, resume_run, run_actions, run_lists, run_names, run_rows, run_view, selected, status_markdown,
)

METHOD_CHOICES = [("DPO", "dpo"), ("IPO (DPO, squared loss)", "ipo"), ("KTO (thumbs up/down)", "kto"),
                  ("ORPO (no reference)", "orpo"), ("SimPO (no reference, length-normalized)", "simpo"),
                  ("Reward model (a judge trained from your labels)", "reward")]
SWEEP_BETAS = "0.01, 0.05, 0.1, 0.2, 0.5"
REMEMBERED_RUN_KEY = "alignstudio-train-run"  # localStorage key of the run this browser last looked at

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

    def form(self) -> list:
        return [self.method, self.loss_type, self.model, self.data_kind, self.snapshot, self.data_file, self.beta,
                self.learning_rate, self.max_steps, self.epochs, self.batch_size, self.grad_accum, self.max_length,
                self.seed, self.label_smoothing, self.full, self.lora_r, self.lora_alpha, self.lora_dropout,
                self.heldout_fraction, self.early_stopping, self.report_to, self.run_name]

    def live_outputs(self) -> list:
        return [self.status, self.diagnostics, self.before_after, self.calibration, self.plot_loss, self.plot_accuracy, self.plot_margins,
                self.plot_rewards, self.plot_kl, self.plot_lr, self.plot_throughput, self.log]


def build(services: Services) -> TrainView:
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            gr.Markdown("### New run")
            method = gr.Dropdown(METHOD_CHOICES, value="dpo", label="Method", elem_id="train-method")
            loss_type = gr.Dropdown(loss_choices("dpo"), value=["sigmoid"], multiselect=True, label="Loss type",
                                    info="DPO: add 'sft' for an SFT term; ipo/robust for noisy labels",
                                    elem_id="train-loss-type")
            model = gr.Dropdown(services.registry.names(), value=services.default_model, label="Base model",
                                allow_custom_value=True, elem_id="train-model")
            data_kind = gr.Radio([("Snapshot", "snapshot"), ("File", "file")], value="snapshot",
                                 label="Training data", elem_id="train-data-kind")
            snapshot = gr.Dropdown(snapshot_choices(services), label="Snapshot", allow_custom_value=False,
                                   elem_id="train-snapshot")
            data_file = gr.Textbox(label="File (JSONL / Parquet) or datasets folder", visible=False,
                                   placeholder="data/example_preferences.jsonl", elem_id="train-data-file")
            with gr.Row():
                beta = gr.Number(0.1, label="beta", minimum=0.0001, step=0.01, elem_id="train-beta",
                                 info=RunSpec.help("beta")[:60] + "...")
                learning_rate = optional_number_box("Learning rate (empty = chosen from the data)",
                                                    "chosen from the data", "train-lr")
            with gr.Row():
                max_steps = optional_number_box("Max steps (empty = epochs)", "from the epochs", "train-max-steps")
                epochs = optional_number_box("Epochs (empty = chosen from the data)", "chosen from the data",
                                             "train-epochs")
            with gr.Row():
                batch_size = optional_number_box("Batch size (empty = chosen)", "chosen", "train-batch-size")
                grad_accum = gr.Number(1, label="Grad accumulation", precision=0, minimum=1,
                                       elem_id="train-grad-accum")
            with gr.Row():
                max_length = gr.Number(512, label="Max length (tokens)", precision=0, minimum=16,
                                       elem_id="train-max-length")
                seed = gr.Number(42, label="Seed", precision=0, minimum=0, elem_id="train-seed")
            with gr.Accordion("More settings", open=False):
                label_smoothing = gr.Number(0.0, label="Label smoothing (robust/EXO/SimPO)", minimum=0, maximum=0.49,
                                            elem_id="train-label-smoothing")
                full = gr.Checkbox(False, label="Full fine-tuning (instead of LoRA)", elem_id="train-full")
                with gr.Row():
                    heldout_fraction = gr.Number(0.2, label="Held-out share of the labels (0 = off)", minimum=0,
                                                 maximum=0.5, elem_id="train-heldout", info="split by prompt")
                    early_stopping = gr.Checkbox(True, label="Early stopping, keep the best held-out checkpoint",
                                                 elem_id="train-early-stopping")
                with gr.Row():
                    lora_r = gr.Number(16, label="LoRA r", precision=0, minimum=1, elem_id="train-lora-r")
                    lora_alpha = gr.Number(32, label="LoRA alpha", precision=0, minimum=1,
                                           elem_id="train-lora-alpha")
                    lora_dropout = gr.Number(0.05, label="LoRA dropout", minimum=0, maximum=0.9,
                                             elem_id="train-lora-dropout")
                report_to = gr.CheckboxGroup(list(TRACKERS), value=[], label="Experiment trackers",
                                             info="TensorBoard writes into the run folder; W&B, MLflow and Trackio "
                                                  "need their package and read keys from the environment",
                                             elem_id="train-report-to")
            run_name = gr.Textbox(label="Run name (optional)", elem_id="train-name")
            override = gr.Checkbox(False, label="Train even if validation finds errors", elem_id="train-override")
            start = gr.Button("Start training", variant="primary", elem_id="train-start")
            with gr.Row():
                sweep_betas = gr.Textbox(SWEEP_BETAS, label="Beta sweep values", scale=3, elem_id="train-sweep-betas")
                sweep = gr.Button("Queue beta sweep", scale=1, elem_id="train-sweep")
            message = gr.Markdown(elem_id="train-message")
        with gr.Column(scale=5):
            runs = gr.Dataframe(pd.DataFrame(run_rows(services), columns=RUN_HEADERS), interactive=False,
                                label="Runs (newest first)", elem_id="train-runs", max_height=260)
            with gr.Row():
                names = run_names(services)
                run = gr.Dropdown(names, value=names[0] if names else None, label="Run", scale=3,
                                  elem_id="train-run")
                # clickable only where they apply to the selected run (set on load and selection)
                cancel = gr.Button("Cancel", size="sm", variant="stop", elem_id="train-cancel", interactive=False)
                resume = gr.Button("Resume", size="sm", elem_id="train-resume", interactive=False)
                merge = gr.Button("Merge adapter", size="sm", elem_id="train-merge", interactive=False)
                refresh = gr.Button("Refresh", size="sm", elem_id="train-refresh")
            status = gr.Markdown(elem_id="train-status")
            diagnostics = gr.Markdown(elem_id="train-diagnostics")
            with gr.Accordion("Before / after: held-out prompts, base vs trained (same seed)", open=True):
                before_after = gr.Dataframe(pd.DataFrame(columns=BEFORE_AFTER_HEADERS), interactive=False,
                                            wrap=True, elem_id="train-before-after", max_height=420)
                with gr.Row():
                    eval_judge = gr.Dropdown(EVAL_JUDGES, value="auto", label="Judge", scale=3,
                                             elem_id="train-eval-judge")
                    eval_force = gr.Checkbox(False, label="Use it even if it is at chance against people",
                                             scale=2, elem_id="train-eval-force")
                    eval_start = gr.Button(f"Evaluate against the base ({EVAL_PROMPTS} held-out prompts, both "
                                           "orders)", scale=3, elem_id="train-eval", interactive=False)
                eval_summary = gr.Markdown(elem_id="train-eval-summary")
            with gr.Row():
                plot_loss = _plot("Loss: training, held-out (orange), and its start (grey, ln 2 for DPO)",
                                  "train-plot-loss", "loss", LOSS_SERIES)
                plot_accuracy = _plot("Reward accuracy: training and held-out", "train-plot-accuracy", "accuracy",
                                      SPLIT_SERIES, y_lim=[0, 1])
            with gr.Row():
                plot_margins = _plot("Reward margin (chosen - rejected): training and held-out",
                                     "train-plot-margins", "margin", SPLIT_SERIES)
                plot_rewards = _plot("Chosen and rejected rewards", "train-plot-rewards", "reward", REWARD_SERIES)
            calibration = gr.LinePlot(
                placeholder_calibration(), x="predicted", y="observed", color="series",
                color_map={"reward model": COLORS["train"], "perfectly calibrated": COLORS[START]},
                title="Reward model calibration on held-out pairs: predicted vs observed P(chosen wins)",
                x_title="predicted", y_title="observed", height=240, elem_id="train-plot-calibration",
                visible=False)
            with gr.Row():
                plot_kl = _plot("KTO: KL estimate", "train-plot-kl", "kl")
                plot_lr = _plot("Learning rate", "train-plot-lr", "lr")
                plot_throughput = _plot("Throughput", "train-plot-throughput", "tokens/s")
            with gr.Accordion("Compare runs (e.g. a beta sweep)", open=False):
                with gr.Row():
                    compare_runs = gr.Dropdown(names, multiselect=True, label="Runs", scale=3,
                                               elem_id="train-compare-runs")
                    compare_metric = gr.Radio(COMPARE_METRICS, value="loss", label="Metric", scale=2,
                                              elem_id="train-compare-metric")
                    compare_refresh = gr.Button("Redraw", size="sm", scale=1, elem_id="train-compare-refresh")

                # Run names are the series here, so the plot is drawn afresh for each selection (a live
                # LinePlot keeps the colour domain it was first drawn with).
                @gr.render(inputs=[compare_runs, compare_metric],
                           triggers=[compare_runs.change, compare_metric.change, compare_refresh.click])
                def _compare(selected, metric):
                    frame = compare_frame(services, selected, metric)
                    gr.LinePlot(frame if len(frame) else None, x="step", y="value", color="series",
                                title="Runs compared", x_title="step", y_title=metric, height=280,
                                elem_id="train-plot-compare")
            with gr.Accordion("Log", open=False):
                log = gr.Textbox(lines=12, max_lines=30, label="log.txt (last lines)", interactive=False,
                                 elem_id="train-log")
    timer = gr.Timer(POLL_S)
    remembered = gr.BrowserState(None, storage_key=REMEMBERED_RUN_KEY)
    return TrainView(method, loss_type, model, data_kind, snapshot, data_file, beta, learning_rate, max_steps,
                     epochs, batch_size, grad_accum, max_length, seed, label_smoothing, full, lora_r, lora_alpha,
                     lora_dropout, heldout_fraction, early_stopping, report_to, run_name, override, start, sweep_betas, sweep, message, runs, run, cancel, resume, merge,
                     refresh, status, diagnostics, before_after, eval_judge, eval_force, eval_start, eval_summary,
                     calibration, plot_loss, plot_accuracy, plot_margins, plot_rewards, plot_kl,
                     plot_lr, plot_throughput, compare_runs, compare_metric, compare_refresh, log, timer,
                     remembered)


# -- handlers (plain functions) ------------------------------------------------------------------------


def loss_choices(method: str) -> list[str]:
    if method in ("dpo", "ipo"):
        return list(DPO_LOSS_TYPES)
    if method == "kto":
        return list(KTO_LOSS_TYPES)
    return []


def method_changed(method: str) -> tuple:
    """The loss-type picker follows the method (ORPO/SimPO have a single loss)."""
    choices = loss_choices(method)
    value = {"dpo": ["sigmoid"], "ipo": ["ipo"], "kto": ["kto"]}.get(method, [])
    return gr.update(choices=choices, value=value, interactive=method in ("dpo", "kto")), \
        gr.update(value=2.0 if method == "simpo" else 0.1)


def data_kind_changed(kind: str) -> tuple:
    return gr.update(visible=kind == "snapshot"), gr.update(visible=kind == "file")


def snapshot_choices(services: Services) -> list[tuple[str, str]]:
    out = []
    for snap in services.store.snapshots():
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(snap["created"]))
        out.append((f"{snap['kind']} · {snap['rows']} rows · {stamp} · {snap['fingerprint'][:8]}", snap["path"]))
    return out


def _int(value, name: str, default=None):
    number = optional_number(value, name, whole=True)
    return default if number is None else number


def form_to_spec(method, loss_type, model, data_kind, snapshot, data_file, beta, learning_rate, max_steps,
                 epochs, batch_size, grad_accum, max_length, seed, label_smoothing, full, lora_r, lora_alpha,
                 lora_dropout, heldout_fraction=0.2, early_stopping=True, report_to=None,
                 run_name=None) -> RunSpec:
    """The form's values as a validated RunSpec (UserError names the bad field)."""
    data = (snapshot if data_kind == "snapshot" else (data_file or "").strip()) or ""
    if not data:
        raise UserError("choose a snapshot (make one in the Data tab) or enter a data file"
                        if data_kind == "snapshot" else "enter the path of a training data file")
    from pathlib import Path

    path = Path(data).expanduser()
    if not path.exists():
        raise UserError(f"training data {data} does not exist")
    loss = list(loss_type or []) if method in ("dpo", "kto") else None
    if method == "ipo":
        loss = None
    return RunSpec(
        method=method, model=(model or "").strip(), data=str(path.resolve()), loss_type=loss or None,
        beta=float(beta if beta is not None else 0.1), learning_rate=_auto(learning_rate, "learning rate"),
        max_steps=_int(max_steps, "max steps"), num_train_epochs=_auto(epochs, "epochs"),
        batch_size=_int(batch_size or None, "batch size"), grad_accum=_int(grad_accum, "grad accumulation", 1),
        max_length=_int(max_length, "max length", 512), seed=_int(seed, "seed", 42),
        label_smoothing=float(label_smoothing or 0.0), full=bool(full), lora_r=_int(lora_r, "LoRA r", 16),
        lora_alpha=_int(lora_alpha, "LoRA alpha", 32), lora_dropout=float(lora_dropout or 0.0),
        heldout_fraction=float(heldout_fraction or 0.0), early_stopping=bool(early_stopping),
        report_to=list(report_to or []),
    )


def _auto(value, name: str = "value") -> float | None:
    """An optional number box: empty (or 0, which an API client may send) = chosen from the data."""
    return optional_number(value, name) or None


def _run_name(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def start_run(services: Services, override: bool, *form) -> tuple:
    spec = form_to_spec(*form)
    gate_training_data(spec.data, override=bool(override))
    name = services.runs.start(spec, _run_name(form[-1]))
    return _after_change(services, name, f"Queued **{name}** ({spec.label}).")


def sweep_runs(services: Services, override: bool, betas_text: str, *form) -> tuple:
    try:
        betas = [float(b) for b in (betas_text or "").replace(";", ",").split(",") if b.strip()]
    except ValueError:
        raise UserError(f"beta sweep values must be numbers separated by commas, got {betas_text!r}") from None
    spec = form_to_spec(*form)
    gate_training_data(spec.data, override=bool(override))
    names = services.runs.sweep(spec, betas, _run_name(form[-1]))
    table, run_update, compare_update, _ = _after_change(services, names[0], "")
    compare_update = gr.update(choices=run_names(services), value=names)
    note = f"Queued {len(names)} runs (one at a time): " + ", ".join(f"**{n}**" for n in names)
    return table, run_update, compare_update, note


def _after_change(services: Services, selected: str, note: str) -> tuple:
    names = run_names(services)
    return (pd.DataFrame(run_rows(services), columns=RUN_HEADERS), gr.update(choices=names, value=selected),
            gr.update(choices=names), note)


# -- events -------------------------------------------------------------------------------------------------


def form_lists(services: Services, model: str | None, snapshot: str | None) -> tuple:
    """The base models and snapshots as they are now (page load, tab open, Refresh); with no snapshot chosen
    (or the chosen one gone) the newest is chosen."""
    snapshots = snapshot_choices(services)
    paths = [path for _, path in snapshots]
    return (gr.update(choices=services.registry.names()),
            gr.update(choices=snapshots) if snapshot in paths else
            gr.update(choices=snapshots, value=paths[0] if paths else None))


def wire(view: TrainView, services: Services, demo: gr.Blocks | None = None, tab: gr.Tab | None = None) -> None:
    form = view.form()
    live = view.live_outputs()
    buttons = view.actions()
    polled = [view.runs, *live, *buttons]
    changed = [view.runs, view.run, view.compare_runs, view.message]
    on(view.method.change, method_changed, [view.method], [view.loss_type, view.beta])
    on(view.data_kind.change, data_kind_changed, [view.data_kind], [view.snapshot, view.data_file])
    on(view.start.click, lambda o, *f: start_run(services, o, *f), [view.override, *form], changed,
       api_name="train_start")
    on(view.sweep.click, lambda o, b, *f: sweep_runs(services, o, b, *f), [view.override, view.sweep_betas, *form],
       changed, api_name="train_sweep")
    on(view.cancel.click, lambda n: cancel_run(services, n), [view.run], [view.message])
    on(view.resume.click, lambda n: resume_run(services, n), [view.run], [view.message])
    on(view.merge.click, lambda n: merge_run(services, n), [view.run], [view.message])

    eval_inputs = [view.run, view.eval_judge, view.eval_force]
    view.eval_start.click(with_progress(lambda *v, progress: evaluate_against_base(services, *v, progress=progress),
                                        eval_inputs, [view.eval_summary]),
                          eval_inputs, [view.eval_summary], api_name="train_evaluate_against_base",
                          concurrency_limit=1)
    on(view.run.change, lambda n: selected(services, n), [view.run], [*live, *buttons, view.remembered])
    view.runs.select(pick_from_table, view.runs, view.run, api_name=False)
    on(view.timer.tick, lambda n: (*poll(services, n), *run_actions(services, n)), [view.run], polled,
       show_progress="hidden", concurrency_limit=None, api_name=False)
    lists = [view.model, view.snapshot]
    restored = [view.runs, view.run, view.compare_runs, *live, *buttons]
    on(view.refresh.click, lambda n, m, s: (*restore(services, n), *form_lists(services, m, s)),
       [view.run, view.model, view.snapshot], [*restored, *lists])
    # page load: the run this browser looked at last (or the newest running one) with its live plots, and
    # every list as it is now; opening the tab refreshes the lists and keeps the selection
    if demo is not None:
        on(demo.load, lambda n, m, s: (*restore(services, n), *form_lists(services, m, s)),
           [view.remembered, view.model, view.snapshot], [*restored, *lists], api_name=False, show_progress="hidden")
    if tab is not None:
        on(tab.select, lambda n, m, s: (*run_lists(services, n), *form_lists(services, m, s)),
           [view.run, view.model, view.snapshot], [view.runs, view.run, view.compare_runs, *lists], api_name=False,
           show_progress="hidden")
