"""Rounds tab: a wizard for iterative alignment (sample -> judge -> filter -> train -> evaluate, N times),
run as its own process; the tab polls its folder and plots the win rate against the SFT model per round."""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..core.errors import UserError
from ..services.container import Services
from ..services.sampling.prompt_sets import SHIPPED
from ..services.rounds import (TABLE_COLUMNS, RoundsSettings, launch_rounds, list_rounds, read_rounds, round_table,
                               rounds_root)
from .common import on
from .fields import optional_number, optional_number_box

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


def build(services: Services) -> RoundsView:
    gr.Markdown("Each round samples pairs from the current policy, labels them with an AI judge (both orders), "
                "drops ties and invalid pairs, trains DPO from the current policy and evaluates it against the SFT "
                "model on held-out prompts.")
    with gr.Row():
        name = gr.Textbox(f"rounds-{time.strftime('%m%d-%H%M')}", label="Name", elem_id="rounds-name")
        base_model = gr.Dropdown(services.registry.names(), value=services.default_model, label="SFT model",
                                 elem_id="rounds-model", allow_custom_value=True)
        judge = gr.Dropdown([("best available (trained reward model, else the configured server)", ""),
                             ("reward model (offline)", "reward"), ("rule-based (smoke tests)", "rules"),
                             ("local model prompted (no signal at 135M)", "local")], value="", label="Judge",
                            elem_id="rounds-judge")
    with gr.Row():
        rounds = gr.Number(2, label="Rounds", precision=0, minimum=1, elem_id="rounds-count")
        pairs_per_round = gr.Number(16, label="Pairs per round", precision=0, minimum=2, elem_id="rounds-pairs")
        max_steps = optional_number_box("Training steps per round (empty = chosen from the pairs)",
                                        "chosen from the pairs", "rounds-steps")
        eval_limit = gr.Number(16, label="Evaluation prompts", precision=0, minimum=1, elem_id="rounds-eval")
    with gr.Row():
        force_judge = gr.Checkbox(False, label="Use the judge even if it is at chance against people (reports say so)",
                                  elem_id="rounds-force-judge")
        retrain_judge = gr.Checkbox(False, label="Retrain the reward judge each round (off: it would learn its own "
                                                 "verdicts)", elem_id="rounds-retrain-judge")
    start = gr.Button("Start rounds", variant="primary", elem_id="rounds-start")
    pick = gr.Dropdown(list_rounds(services.workspace), label="Rounds", elem_id="rounds-pick")
    status = gr.Markdown(elem_id="rounds-status")
    table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), interactive=False, elem_id="rounds-table")
    plot = gr.LinePlot(x="round", y="win_rate", title="Win rate against the SFT model", y_lim=[0, 1],
                       elem_id="rounds-plot")
    with gr.Accordion("Log", open=False):
        log = gr.Code(language=None, elem_id="rounds-log")
    return RoundsView(name, base_model, rounds, pairs_per_round, judge, max_steps, eval_limit, force_judge,
                      retrain_judge, start, pick, status,
                      table, plot, log, gr.Timer(3.0))


def start_rounds(services: Services, name, base_model, rounds, pairs, judge, max_steps, eval_limit,
                 force_judge=False, retrain_judge=False) -> tuple:
    settings = RoundsSettings(rounds=int(rounds or 0), pairs_per_round=int(pairs or 0), judge=judge or "",
                              max_steps=optional_number(max_steps, "training steps", whole=True) or None,
                              eval_limit=int(eval_limit or 0),
                              force_judge=bool(force_judge), retrain_judge=bool(retrain_judge))
    if not base_model:
        raise UserError("choose the SFT model")
    launch_rounds(services.workspace, (name or "").strip(), base_model, settings, SHIPPED["default"],
                  SHIPPED["eval"])
    return gr.update(choices=list_rounds(services.workspace), value=name.strip())


def show(services: Services, picked: str | None) -> tuple:
    if not picked:
        return "", pd.DataFrame(columns=COLUMNS), pd.DataFrame(columns=["round", "win_rate"]), ""
    folder = rounds_root(services.workspace) / picked
    summary = read_rounds(folder) or {"state": "unknown", "note": "", "rounds": []}
    rows = summary["rounds"]
    table = pd.DataFrame(round_table(rows), columns=COLUMNS)
    plot = pd.DataFrame([{"round": r["round"], "win_rate": r["win_rate"]} for r in rows if r.get("win_rate") is not None],
                        columns=["round", "win_rate"])
    log_path = folder / "log.txt"
    log = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:]) if log_path.exists() else ""
    trust = summary.get("judge_trust") or {}
    judge_line = f"\n\n{trust['warning'] if trust.get('warning') else trust.get('line', '')}" if trust else ""
    return f"**{summary['state']}** · {summary.get('note', '')}{judge_line}", table, plot, log


def lists(services: Services, model: str | None, picked: str | None) -> tuple:
    """The model and rounds lists as they are now (a new trained model, rounds started from the CLI); on page
    load and whenever the tab opens. With nothing picked yet, the newest rounds folder is shown."""
    names = list_rounds(services.workspace)
    return (gr.update(choices=services.registry.names()),
            gr.update(choices=names) if picked in names else
            gr.update(choices=names, value=names[0] if names else None))


def wire(view: RoundsView, services: Services, tab: gr.Tab | None = None, demo: gr.Blocks | None = None) -> None:
    form = [view.name, view.base_model, view.rounds, view.pairs_per_round, view.judge, view.max_steps,
            view.eval_limit, view.force_judge, view.retrain_judge]
    shown = [view.status, view.table, view.plot, view.log]
    on(view.start.click, lambda *f: start_rounds(services, *f), form, view.pick, api_name="rounds_start")
    on(view.pick.change, lambda p: show(services, p), [view.pick], shown, api_name=False)
    view.timer.tick(lambda p: show(services, p), view.pick, shown, show_progress="hidden", api_name=False)
    for event in ([tab.select] if tab is not None else []) + ([demo.load] if demo is not None else []):
        on(event, lambda m, p: lists(services, m, p), [view.base_model, view.pick], [view.base_model, view.pick],
           api_name=False, show_progress="hidden")
