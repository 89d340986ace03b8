"""The Label tab's live mode (issue 37): an admin starts or stops a live session for the prompt set on screen (from
Model A), the tab's pairs then come from its newest version (`live_config`), each decisive label goes to it
(`learn`), and a chip shows where the policy is, refreshed by its own timer (file reads only: it never waits
behind a burst, which runs in the trainer process).

Wired into ui/label.py (layout, the feed and the labels) and ui/label_events.py (`wire`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.live import AGAINST_BASE, POLICY, LiveSettings
from ..services.sampling.prefetch import FeedConfig
from .common import feed_config, on
from .render import escape_markdown_html

CHIP_POLL_S = 2.0
PAIRS_CHOICES = [
    ("both answers from the live policy", POLICY),
    ("one from the live policy, one from the base model", AGAINST_BASE),
]
OFF = "Live mode is off for this prompt set: pairs come from the models chosen."


@dataclass
class LiveControls:
    pairs: gr.Radio
    every: gr.Number
    start: gr.Button
    stop: gr.Button
    message: gr.Markdown
    chip: gr.Markdown
    timer: gr.Timer


def build() -> LiveControls:
    chip = gr.Markdown(OFF, elem_id="label-live-chip")
    with gr.Accordion("Live mode: the model learns while you label (admins start and stop it)", open=False):
        with gr.Row():
            pairs = gr.Radio(PAIRS_CHOICES, value=POLICY, label="Live pairs", elem_id="label-live-pairs", scale=3)
            every = gr.Number(
                LiveSettings().every,
                precision=0,
                minimum=1,
                label="Burst every (labels)",
                elem_id="label-live-every",
                scale=1,
            )
        with gr.Row():
            start = gr.Button("Start live mode from Model A", elem_id="label-live-start", size="sm")
            stop = gr.Button("Stop live mode", elem_id="label-live-stop", size="sm")
        message = gr.Markdown(elem_id="label-live-message")
    return LiveControls(pairs, every, start, stop, message, chip, gr.Timer(CHIP_POLL_S))


# -- the feed and the labels (called from ui/label.py) -----------------------------------------------------------


def live_config(services: Services, *config) -> FeedConfig:
    """The Label tab's feed for its sampling controls' values: the live policy's while the prompt set is live."""
    return services.live.label_feed(feed_config("pair", *config))


def learn(services: Services, ack, edited_text: str | None = None) -> str:
    """Hand a stored label to the live session that sampled its pair (not a repeat of one already stored); the
    words to add to the tab's "Stored" line."""
    if ack.duplicate:
        return ""
    try:
        status = services.live.learn_label(ack.event_id, edited_text)
    except UserError as exc:  # the label is stored; only the live policy misses it
        return f" · the live policy did not take it: {escape_markdown_html(str(exc))}"
    if status is None:
        return ""
    return f" · live label {status.labels}"


# -- handlers ------------------------------------------------------------------------------------------------------


def _ago(moment: float | None) -> str:
    if moment is None:
        return "no burst yet"
    seconds = max(0, int(time.time() - moment))
    return f"last burst finished {time.strftime('%H:%M:%S', time.localtime(moment))} ({seconds} s ago)"


def chip(services: Services, prompt_set: str) -> str:
    """The live chip: version, labels it learned from, held-out accuracy, when the last burst finished."""
    name = services.live.chip_session(prompt_set or "")
    if name is None:
        return OFF
    status = services.live.status(name)
    running = services.live.running(name)
    bursts = services.live.bursts(name)
    kept = sum(1 for b in bursts if b.get("outcome") == "kept")
    accuracy = "-" if status.heldout_accuracy is None else f"{status.heldout_accuracy:.2f}"
    version = "loading" if status.current is None else f"v{status.current}"
    state = status.state if running else f"{status.state}: pairs come from the models chosen"
    parts = [
        f"**Live {escape_markdown_html(version)}** ({escape_markdown_html(state)})",
        f"learned from {status.labels_learned} labels ({status.labels} given)",
        f"held-out accuracy {accuracy} on {status.heldout_labels} held-out labels",
        f"{len(bursts)} bursts: {kept} kept, {len(bursts) - kept} not",
        _ago(status.last_burst_finished),
    ]
    if status.error:
        parts.append(f"error: {escape_markdown_html(status.error)}")
    return " · ".join(parts)


def start(services: Services, prompt_set: str, model: str, pairs: str, every) -> tuple[str, str]:
    name = services.live.start_campaign(prompt_set, model, pairs=pairs, every=every)
    note = (
        f"Started live session **{escape_markdown_html(name)}** from **{escape_markdown_html(model)}**: "
        "its pairs come once its trainer is ready."
    )
    return note, chip(services, prompt_set)


def stop(services: Services, prompt_set: str) -> tuple[str, str]:
    name = services.live.stop_campaign(prompt_set)
    return f"Stopped live session **{escape_markdown_html(name)}**.", chip(services, prompt_set)


def wire(view: LiveControls, services: Services, prompt_set: gr.Dropdown, model_a: gr.Dropdown) -> None:
    outputs = [view.message, view.chip]
    on(
        view.start.click,
        lambda p, m, pairs, every: start(services, p, m, pairs, every),
        [prompt_set, model_a, view.pairs, view.every],
        outputs,
        api_name="label_live_start",
    )
    on(view.stop.click, lambda p: stop(services, p), [prompt_set], outputs, api_name="label_live_stop")
    on(
        view.timer.tick,
        lambda p: chip(services, p),
        [prompt_set],
        [view.chip],
        api_name=False,
        show_progress="hidden",
        concurrency_limit=None,  # a tick never waits behind another user's event
    )
