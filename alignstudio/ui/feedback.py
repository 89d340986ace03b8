"""Feedback tab: one response at a time, thumbs up or down (the data KTO learns from)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.feedback import ShownResponse
from .common import SamplingControls, count_line, feed_config, on, sampling_controls
from .render import escape_markdown_html

EMPTY = {"shown": None, "history": []}


@dataclass
class FeedbackView:
    annotator: gr.Textbox
    sampling: SamplingControls
    prompt: gr.Markdown
    response: gr.Markdown
    reason: gr.Textbox
    up: gr.Button
    down: gr.Button
    skip: gr.Button
    undo: gr.Button
    status: gr.Markdown
    state: gr.State

    def outputs(self) -> list:
        return [self.state, self.prompt, self.response, self.reason, self.status]


def build(services: Services, annotator: gr.Textbox) -> FeedbackView:
    sampling = sampling_controls(services, "feedback", pair=False)
    prompt = gr.Markdown("Open this tab to get a response ...", elem_id="feedback-prompt")
    response = gr.Markdown(elem_id="feedback-response")
    reason = gr.Textbox(label="Reason (optional)", lines=1, elem_id="feedback-reason")
    with gr.Row():
        up = gr.Button("👍 Good  [+]", variant="primary", elem_id="feedback-up")
        down = gr.Button("👎 Bad  [-]", variant="stop", elem_id="feedback-down")
    with gr.Row():
        skip = gr.Button("Skip  [k]", size="sm", elem_id="feedback-skip")
        undo = gr.Button("Undo last  [u]", size="sm", elem_id="feedback-undo")
    status = gr.Markdown(elem_id="feedback-status")
    return FeedbackView(annotator, sampling, prompt, response, reason, up, down, skip, undo, status,
                        gr.State(dict(EMPTY)))


def _present(services: Services, state: dict, shown: ShownResponse, annotator: str) -> tuple:
    state = {"shown": asdict(shown), "history": list(state.get("history", []))}
    prompt_md = f"**Prompt** ({shown.prompt_set})\n\n{escape_markdown_html(shown.prompt)}"
    return state, prompt_md, escape_markdown_html(shown.text), "", count_line(services, annotator, "feedback")


def next_response(services: Services, state: dict, annotator: str, *config) -> tuple:
    shown = services.feedback.next_response(feed_config("single", *config))
    return _present(services, state, shown, annotator)


def rate(services: Services, verdict: str, state: dict, annotator: str, reason: str, *config) -> tuple:
    if not state.get("shown"):
        raise UserError("there is no response on screen yet")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    event_id = services.feedback.rate(ShownResponse(**state["shown"]), verdict, annotator=annotator,
                                      rationale=reason)
    state = {"shown": state["shown"], "history": [*state.get("history", []), event_id]}
    return next_response(services, state, annotator, *config)


def undo_last(services: Services, state: dict, annotator: str) -> tuple:
    history = list(state.get("history", []))
    if not history:
        raise UserError("nothing to undo")
    services.feedback.undo(history.pop(), annotator=annotator)
    state = {"shown": state.get("shown"), "history": history}
    return state, f"Undid your last rating · {count_line(services, annotator, 'feedback')}"


def wire(view: FeedbackView, services: Services, tab: gr.Tab) -> None:
    config = view.sampling.inputs()
    outputs = view.outputs()
    me = view.annotator

    def fresh(state, annotator, *values):
        return next_response(services, state, annotator, *values)

    def first_time(state, annotator, *values):  # sample only when the tab is first opened
        if state.get("shown"):
            return tuple(gr.skip() for _ in outputs)
        return fresh(state, annotator, *values)

    on(tab.select, first_time, [view.state, me, *config], outputs, me, api_name=False)
    for button, verdict in ((view.up, "up"), (view.down, "down")):
        on(button.click, lambda s, a, r, *c, _v=verdict: rate(services, _v, s, a, r, *c),
           [view.state, me, view.reason, *config], outputs, me, api_name=f"feedback_{verdict}",
           concurrency_limit=None)
    on(view.skip.click, fresh, [view.state, me, *config], outputs, me, api_name="feedback_skip",
       concurrency_limit=None)
    on(view.undo.click, lambda s, a: undo_last(services, s, a), [view.state, me], [view.state, view.status], me,
       api_name="feedback_undo", concurrency_limit=None)
    for component in view.sampling.source_inputs():
        on(component.change, fresh, [view.state, me, *config], outputs, me, trigger_mode="always_last",
           api_name=False)
