"""Composes the tabs into one Gradio app and launches it. No logic lives here."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..services.container import Services
from . import arena, data, evaluate, feedback, label, rounds, train, validate

_SHORTCUTS = (Path(__file__).with_name("shortcuts.js")).read_text()


def _login_name(request: gr.Request):
    """With accounts, the annotator is whoever logged in: show it and lock the box."""
    user = getattr(request, "username", None)
    return gr.update(value=user, interactive=False) if user else gr.skip()


def build_app(services: Services) -> gr.Blocks:
    with gr.Blocks(title="AlignStudio") as demo:
        with gr.Row():
            gr.Markdown("# AlignStudio")
            annotator = gr.Textbox(label="Annotator", placeholder="your name", elem_id="annotator", scale=0,
                                   min_width=240)
        with gr.Tab("Label", id="tab-label"):
            label_view = label.build(services, annotator)
        with gr.Tab("Feedback", id="tab-feedback") as feedback_tab:
            feedback_view = feedback.build(services, annotator)
        with gr.Tab("Data", id="tab-data") as data_tab:
            data_view = data.build(services, annotator)
        with gr.Tab("Validate", id="tab-validate") as validate_tab:
            validate_view = validate.build(services)
        with gr.Tab("Train", id="tab-train") as train_tab:
            train_view = train.build(services)
        with gr.Tab("Evaluate", id="tab-evaluate") as evaluate_tab:
            evaluate_view = evaluate.build(services)
        with gr.Tab("Arena", id="tab-arena") as arena_tab:
            arena_view = arena.build(services, annotator)
        with gr.Tab("Rounds", id="tab-rounds") as rounds_tab:
            rounds_view = rounds.build(services)
        demo.load(_login_name, None, annotator, api_name=False)
        label.wire(label_view, services, demo)
        feedback.wire(feedback_view, services, feedback_tab)
        data.wire(data_view, services, data_tab, demo)
        validate.wire(validate_view, services, validate_tab, demo)
        train.wire(train_view, services, demo, train_tab)
        evaluate.wire(evaluate_view, services, evaluate_tab, demo)
        arena.wire(arena_view, services, arena_tab)
        rounds.wire(rounds_view, services, rounds_tab, demo)
    return demo


def private_paths(services: Services) -> list[str]:
    """Workspace files no route may serve: the store, runs, models, snapshots, prompt sets, judge cache,
    evaluation reports and rounds (exports stay downloadable)."""
    ws = services.workspace
    store = str(ws.db_path)
    return [store, store + "-wal", store + "-shm", store + ".writelock", str(ws.runs_dir), str(ws.models_dir),
            str(ws.snapshots_dir), str(ws.root / "prompt_sets"), str(ws.root / "judge_cache"),
            str(ws.root / "evals"), str(ws.root / "rounds")]


def launch(services: Services, host: str = "127.0.0.1", port: int = 7860, accounts=None,
           prevent_thread_lock: bool = False):
    demo = build_app(services)
    demo.queue(default_concurrency_limit=4)
    return demo.launch(
        server_name=host, server_port=port, head=f"<script>{_SHORTCUTS}</script>", show_error=True,
        prevent_thread_lock=prevent_thread_lock, footer_links=[], blocked_paths=private_paths(services),
        auth=accounts.verify if accounts is not None else None,
        auth_message="AlignStudio: sign in with your annotator account" if accounts is not None else None,
    )
