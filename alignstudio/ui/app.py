"""Composes the tabs into one Gradio app and launches it. No logic lives here."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from ..services import ADMIN, caller_for
from ..services.container import Services
from ..services.data.importing import MAX_UPLOAD_MB
from ..services.logins import DEFAULT_SESSION_HOURS, SignIn
from . import arena, campaigns, data, evaluate, feedback, label, label_events, login, rounds, train, validate
from .common import signed_in

_SHORTCUTS = (Path(__file__).with_name("shortcuts.js")).read_text()
# Narrow screens (a phone, 390 px): a one-line title beside a slim annotator box, so the pair starts near the top
_CSS = """
@media (max-width: 640px) {
  #app-header { flex-wrap: nowrap !important; align-items: center; gap: 8px; }
  #app-title { min-width: 0 !important; flex: 0 1 auto !important; }
  #app-title h1 { font-size: 1.25rem; margin: 0; white-space: nowrap; }
  #annotator { min-width: 0 !important; flex: 1 1 auto !important; }
}
"""
# Uploaded files (imports) are read at once into the store; a day later their cached copies can go.
UPLOAD_CACHE = (3600, 86400)  # (check every hour, delete files older than a day)


def _annotator_on_load(remembered: str, request: gr.Request):
    """With accounts, the annotator is whoever logged in: show it and lock the box. Without, the name this
    browser used last (a reload must not turn labels into "anonymous")."""
    user = signed_in(request)
    if user:
        return gr.update(value=user, interactive=False)
    return remembered if remembered else gr.skip()


def _tabs_for_role(request: gr.Request):
    """Annotators label, rate, browse their own labels and vote; the tabs that run the loop are for admins (the
    services refuse those operations to annotators anyway: hiding the tabs only keeps the page honest)."""
    admin = caller_for(signed_in(request)).role == ADMIN
    return tuple(gr.update(visible=admin) for _ in range(4))


def build_app(services: Services) -> gr.Blocks:
    with gr.Blocks(title="AlignStudio", delete_cache=UPLOAD_CACHE) as demo:
        with gr.Row(elem_id="app-header"):
            gr.Markdown("# AlignStudio", elem_id="app-title")
            annotator = gr.Textbox(
                label="Annotator", placeholder="your name", elem_id="annotator", scale=0, min_width=240
            )
        with gr.Tab("Label", id="tab-label") as label_tab:
            label_view = label.build(services, annotator)
        with gr.Tab("Feedback", id="tab-feedback") as feedback_tab:
            feedback_view = feedback.build(services, annotator)
        with gr.Tab("Data", id="tab-data") as data_tab:
            data_view = data.build(services, annotator)
            campaign_view = campaigns.build(services)  # annotators per pair, and each campaign's progress
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
        # the name is not a secret: a fixed key and secret let it survive server restarts
        remembered = gr.BrowserState("", storage_key="alignstudio-annotator", secret="alignstudio-annotator")
        # the first pair after the name is in its box: its status counts the remembered annotator's labels
        named = demo.load(_annotator_on_load, remembered, annotator, api_name=False)
        annotator.change(lambda name: name, annotator, remembered, api_name=False)
        demo.load(_tabs_for_role, None, [validate_tab, train_tab, evaluate_tab, rounds_tab], api_name=False)
        label_events.wire(label_view, services, demo, label_tab, named.then)
        feedback.wire(feedback_view, services, feedback_tab)
        data.wire(data_view, services, data_tab, demo)
        campaigns.wire(campaign_view, services)
        validate.wire(validate_view, services, validate_tab, demo)
        train.wire(train_view, services, demo, train_tab)
        evaluate.wire(evaluate_view, services, evaluate_tab, demo)
        arena.wire(arena_view, services, arena_tab)
        rounds.wire(rounds_view, services, rounds_tab, demo)
    return demo


def private_paths(services: Services) -> list[str]:
    """Workspace files no route may serve: the store, runs, models, snapshots, prompt sets, judge cache,
    evaluation reports, rounds and live sessions (adapters and every annotator's live labels; exports stay
    downloadable)."""
    ws = services.workspace
    store = str(ws.db_path)
    return [
        store,
        store + "-wal",
        store + "-shm",
        store + ".writelock",
        str(ws.runs_dir),
        str(ws.models_dir),
        str(ws.snapshots_dir),
        str(ws.root / "prompt_sets"),
        str(ws.root / "judge_cache"),
        str(ws.root / "evals"),
        str(ws.root / "rounds"),
        str(ws.root / "live"),
    ]


def launch(
    services: Services,
    host: str = "127.0.0.1",
    port: int = 7860,
    accounts=None,
    prevent_thread_lock: bool = False,
    *,
    session_hours: float = DEFAULT_SESSION_HOURS,
    max_upload_mb: int = MAX_UPLOAD_MB,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    allowed_origins: tuple[str, ...] = (),
    trusted_proxies: tuple[str, ...] = (),
):
    # uvicorn (started by Gradio) reads X-Forwarded-For/-Proto only from these peers; its default trusts loopback,
    # which would let anyone on this machine (or a proxy that passes the header through) pick their address
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(trusted_proxies)
    demo = build_app(services)
    demo.queue(default_concurrency_limit=4)
    launched = demo.launch(
        server_name=host,
        server_port=port,
        head=f"<script>{_SHORTCUTS}</script>",
        css=_CSS,
        show_error=True,
        footer_links=[],
        blocked_paths=private_paths(services),
        auth=login.auth_callable(SignIn(accounts)) if accounts is not None else None,
        auth_message="AlignStudio: sign in with your account" if accounts is not None else None,
        app_kwargs=login.app_kwargs(session_hours, allowed_origins),
        max_file_size=max_upload_mb * 1024 * 1024,
        # never a public gradio.live tunnel, whatever GRADIO_SHARE says; never the Node SSR proxy (GRADIO_SSR_MODE),
        # which would hide the client address the login throttle keys on
        share=False,
        ssr_mode=False,
        # quiet: no "To create a public link, set share=True" (Blocks.launch prints it unless quiet; a public
        # link is never made here); the one line worth printing, the address, is printed below
        quiet=True,
        # with TLS, Gradio's start-up self-check calls https://127.0.0.1, which a certificate made out to the
        # real host name (or a self-signed one) fails: it is the app talking to itself, so skip the check
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        ssl_verify=not ssl_certfile,
        prevent_thread_lock=True,
    )
    print(f"* Running on {demo.local_url}", flush=True)
    if not prevent_thread_lock:
        demo.block_thread()
    return launched
