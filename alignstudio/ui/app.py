"""Composes the tabs into one Gradio app and launches it. No logic lives here."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..services.container import Services
from . import label

_SHORTCUTS = (Path(__file__).with_name("shortcuts.js")).read_text()


def build_app(services: Services) -> gr.Blocks:
    with gr.Blocks(title="AlignStudio") as demo:
        gr.Markdown("# AlignStudio")
        with gr.Tab("Label", id="tab-label"):
            label_view = label.build(services)
        label.wire(label_view, services, demo)
    return demo


def launch(services: Services, host: str = "127.0.0.1", port: int = 7860, prevent_thread_lock: bool = False):
    demo = build_app(services)
    demo.queue(default_concurrency_limit=4)
    return demo.launch(
        server_name=host, server_port=port, head=f"<script>{_SHORTCUTS}</script>", show_error=True,
        prevent_thread_lock=prevent_thread_lock, footer_links=[],
    )
