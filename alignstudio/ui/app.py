"""Composes the tabs into one Gradio app and launches it. No logic lives here."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..services.container import Services
from . import data, feedback, label, validate

_SHORTCUTS = (Path(__file__).with_name("shortcuts.js")).read_text()


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
        train_tab = None
        if services.runs is not None and (Path(__file__).with_name("train.py")).exists():  # TEMP until Train tab lands
            from . import train

            with gr.Tab("Train", id="tab-train") as train_tab:
                train_view = train.build(services)
        label.wire(label_view, services, demo)
        feedback.wire(feedback_view, services, feedback_tab)
        data.wire(data_view, services, data_tab)
        validate.wire(validate_view, services, validate_tab)
        if train_tab is not None:
            train.wire(train_view, services)
    return demo


def launch(services: Services, host: str = "127.0.0.1", port: int = 7860, prevent_thread_lock: bool = False):
    demo = build_app(services)
    demo.queue(default_concurrency_limit=4)
    return demo.launch(
        server_name=host, server_port=port, head=f"<script>{_SHORTCUTS}</script>", show_error=True,
        prevent_thread_lock=prevent_thread_lock, footer_links=[],
    )
