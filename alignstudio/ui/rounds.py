"""Rounds tab: a wizard for iterative alignment (sample -> judge -> filter -> train -> evaluate, N times),
run as its own process; the tab polls its folder and plots the win rate against the SFT model per round."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..services import from_values, setting_of
from ..services.container import Services
from ..services.rounds.folder import TABLE_COLUMNS
from ..services.rounds.settings import RoundsSettings
from .common import on
from .fields import optional_number_box, setting_number
from .render import escape_markdown_html

COLUMNS = TABLE_COLUMNS


@dataclass
class RoundsView:
    name: gr.Textbox
    base_model: gr.Dropdown
    rounds: gr.Number
    pairs_per_round: gr.Number
    judge: gr.Dropdown
    max_steps: gr.Textbox
    eval_limit: gr.Number
    force_judge: gr.Checkbox
    retrain_judge: gr.Checkbox
    start: gr.Button
    pick: gr.Dropdown
    status: gr.Markdown
    table: gr.Dataframe
    plot: gr.LinePlot
    log: gr.Code
    timer: gr.Timer
    stop: gr.Button | None = None


def build(services: Services) -> RoundsView:
    gr.Markdown(
        "Each round samples pairs from the current policy, labels them with an AI judge (both orders), "
        "drops ties and invalid pairs, trains DPO from the current policy and evaluates it against the SFT "
        "model on held-out prompts."
    )
    described = lambda field: setting_of(RoundsSettings, field)  # noqa: E731
    with gr.Row():
        name = gr.Textbox(  # empty: a new name when Start is clicked (a name made at page load would repeat)
            label="Name", placeholder="empty: rounds-MMDD-HHMMSS, when you start", elem_id="rounds-name"
        )
        base_model = gr.Dropdown(
            services.model_names(),
            value=services.default_model,
            label="SFT model",
            elem_id="rounds-model",
            allow_custom_value=True,
        )
        judge = gr.Dropdown(
            [
                ("best available (trained reward model, else the configured server)", ""),
                ("reward model (offline)", "reward"),
                ("rule-based (smoke tests)", "rules"),
                ("local model prompted (no signal at 135M)", "local"),
            ],
            value=described("judge").default,
            label=described("judge").title,
            elem_id="rounds-judge",
        )
    with gr.Row():
        rounds = setting_number(RoundsSettings, "rounds", "rounds-count", info=None)
        pairs_per_round = setting_number(RoundsSettings, "pairs_per_round", "rounds-pairs", info=None)
        max_steps = optional_number_box(described("max_steps").title, described("max_steps").empty, "rounds-steps")
        eval_limit = setting_number(RoundsSettings, "eval_limit", "rounds-eval", info=None)
    with gr.Row():
        force_judge = gr.Checkbox(
            described("force_judge").default, label=described("force_judge").title, elem_id="rounds-force-judge"
        )
        retrain_judge = gr.Checkbox(
            described("retrain_judge").default, label=described("retrain_judge").title, elem_id="rounds-retrain-judge"
        )
    start = gr.Button("Start rounds", variant="primary", elem_id="rounds-start")
    with gr.Row():
        pick = gr.Dropdown(services.rounds.names(), label="Rounds", elem_id="rounds-pick", scale=3)
        stop = gr.Button("Stop these rounds", elem_id="rounds-stop", scale=1)  # no more sampling, judging, training
    status = gr.Markdown(elem_id="rounds-status")
    table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="rounds-table")
    plot = gr.LinePlot(
        x="round", y="win_rate", title="Win rate against the SFT model", y_lim=[0, 1], elem_id="rounds-plot"
    )
    with gr.Accordion("Log", open=False):
        log = gr.Code(language=None, elem_id="rounds-log", wrap_lines=True)
    return RoundsView(
        name,
        base_model,
        rounds,
        pairs_per_round,
        judge,
        max_steps,
        eval_limit,
        force_judge,
        retrain_judge,
        start,
        pick,
        status,
        table,
        plot,
        log,
        gr.Timer(3.0),
        stop,
    )


def start_rounds(
    services: Services,
    name,
    base_model,
    rounds,
    pairs,
    judge,
    max_steps,
    eval_limit,
    force_judge=False,
    retrain_judge=False,
) -> tuple:
    settings = from_values(
        RoundsSettings,
        {
            "rounds": rounds,
            "pairs_per_round": pairs,
            "judge": judge or "",
            "max_steps": max_steps,
            "eval_limit": eval_limit,
            "force_judge": bool(force_judge),
            "retrain_judge": bool(retrain_judge),
        },
    )
    started = services.rounds.start(name, base_model, settings)
    return gr.update(choices=services.rounds.names(), value=started)


def show(services: Services, picked: str | None) -> tuple:
    if not picked:
        return "", pd.DataFrame(columns=COLUMNS), pd.DataFrame(columns=["round", "win_rate"]), ""
    shown = services.rounds.view(picked)
    judge_line = f"\n\n{escape_markdown_html(shown.judge_line)}" if shown.judge_line else ""
    note = escape_markdown_html(shown.note)  # an error quotes paths and model output
    # a failure's error in full, as its own paragraph (it wraps); not only in the collapsed log
    state = f"**failed**\n\n{note}" if shown.state == "failed" else f"**{shown.state}** · {note}"
    return (
        f"{state}{judge_line}",
        pd.DataFrame(shown.table, columns=COLUMNS),
        pd.DataFrame(shown.win_rates, columns=["round", "win_rate"]),
        shown.log,
    )


def lists(services: Services, model: str | None, picked: str | None) -> tuple:
    """The model and rounds lists as they are now (a new trained model, rounds started from the CLI); on page
    load and whenever the tab opens. With nothing picked yet, the newest rounds folder is shown."""
    names = services.rounds.names()
    return (
        gr.update(choices=services.model_names()),
        gr.update(choices=names) if picked in names else gr.update(choices=names, value=names[0] if names else None),
    )


def wire(view: RoundsView, services: Services, tab: gr.Tab | None = None, demo: gr.Blocks | None = None) -> None:
    form = [
        view.name,
        view.base_model,
        view.rounds,
        view.pairs_per_round,
        view.judge,
        view.max_steps,
        view.eval_limit,
        view.force_judge,
        view.retrain_judge,
    ]
    shown = [view.status, view.table, view.plot, view.log]
    on(view.start.click, lambda *f: start_rounds(services, *f), form, view.pick, api_name="rounds_start")
    on(view.pick.change, lambda p: show(services, p), [view.pick], shown, api_name=False)
    on(view.stop.click, lambda p: services.rounds.stop(p), [view.pick], view.status, api_name="rounds_stop")
    on(view.timer.tick, lambda p: show(services, p), [view.pick], shown, show_progress="hidden", api_name=False)
    for event in ([tab.select] if tab is not None else []) + ([demo.load] if demo is not None else []):
        on(
            event,
            lambda m, p: lists(services, m, p),
            [view.base_model, view.pick],
            [view.base_model, view.pick],
            api_name=False,
            show_progress="hidden",
        )
