"""Feedback tab: one response at a time, thumbs up or down (the data KTO learns from)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.labeling.feedback import ShownResponse
from .common import SamplingControls, count_line, feed_config, on, sampling_controls, sampling_lists
from .render import escape_markdown_html

EMPTY = {"shown": None}


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
    gr.Markdown("### Response")
    response = gr.Markdown(elem_id="feedback-response")
    reason = gr.Textbox(label="Reason (optional)", lines=1, elem_id="feedback-reason")
    with gr.Row():  # text, not emoji: thumbs glyphs render as empty boxes where no emoji font is installed
        up = gr.Button("Good  [+]", variant="primary", elem_id="feedback-up")
        down = gr.Button("Bad  [-]", variant="stop", elem_id="feedback-down")
    with gr.Row():
        skip = gr.Button("Skip  [k]", size="sm", elem_id="feedback-skip")
        undo = gr.Button("Undo last  [u]", size="sm", elem_id="feedback-undo")
    status = gr.Markdown(elem_id="feedback-status")
    return FeedbackView(
        annotator, sampling, prompt, response, reason, up, down, skip, undo, status, gr.State(dict(EMPTY))
    )


_WORDS = {"up": "good", "down": "bad"}


def _present(
    services: Services, state: dict, shown: ShownResponse, annotator: str, note: str = "", config: tuple = ()
) -> tuple:
    state = {"shown": asdict(shown)}
    ready = ""
    if config:
        count = services.feedback.ready(feed_config("single", *config))
        ready = f"{count} response{'s' * (count != 1)} ready"
    status = " · ".join(part for part in (note, count_line(services, annotator, "feedback"), ready) if part)
    prompt_md = f"### Prompt ({escape_markdown_html(shown.prompt_set)})\n\n{escape_markdown_html(shown.prompt)}"
    return state, prompt_md, escape_markdown_html(shown.text), "", status


def next_response(services: Services, state: dict, annotator: str, *config) -> tuple:
    shown = services.feedback.next_response(feed_config("single", *config))
    return _present(services, state, shown, annotator, config=config)


def rate(services: Services, verdict: str, state: dict, annotator: str, reason: str, *config) -> str:
    """Acknowledge the rating by itself; `advance` then shows the next response (once per rated one)."""
    if not state.get("shown"):
        raise UserError("there is no response on screen yet")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    ack = services.feedback.rate(ShownResponse(**state["shown"]), verdict, annotator=annotator, rationale=reason)
    word = _WORDS[ack.verdict]
    if ack.duplicate:
        return f"Already stored your rating of this response (**{word}**); nothing new was stored."
    waiting = (
        ""
        if services.feedback.ready(feed_config("single", *config))
        else " · sampling the next response: none is ready yet"
    )
    return f"Stored: **{word}** · {count_line(services, annotator, 'feedback')}{waiting}"


def _move_on(services: Services, state: dict, annotator: str, config: tuple, *, rated_only: bool) -> tuple:
    """The next response, once per shown one, however many clicks or retries ask for it."""
    shown = state.get("shown")
    if not shown:
        return next_response(services, state, annotator, *config)
    if rated_only and not services.feedback.is_rated(ShownResponse(**shown)):
        return tuple(gr.skip() for _ in range(5))
    shown_next = services.feedback.moved_on.once(
        shown["key"], lambda: services.feedback.next_response(feed_config("single", *config))
    )
    if shown_next is None:
        return tuple(gr.skip() for _ in range(5))
    # the acknowledgement stays on screen with the next response (prefetched, it replaces "Stored" at once)
    last = services.feedback.last(annotator) if rated_only else None
    note = f"Last: **{_WORDS[last.verdict]}**" if last else ""
    return _present(services, state, shown_next, annotator, note, config)


def advance(services: Services, state: dict, annotator: str, *config) -> tuple:
    return _move_on(services, state, annotator, config, rated_only=True)


def skip(services: Services, state: dict, annotator: str, *config) -> tuple:
    return _move_on(services, state, annotator, config, rated_only=False)


def undo_last(services: Services, state: dict, annotator: str, *config) -> tuple:
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    shown = services.feedback.undo_last(annotator)
    return _present(services, state, shown, annotator, "Undid your last rating: here is its response again", config)


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
        stored = on(
            button.click,
            lambda s, a, r, *c, _v=verdict: rate(services, _v, s, a, r, *c),
            [view.state, me, view.reason, *config],
            view.status,
            me,
            api_name=f"feedback_{verdict}",
            concurrency_limit=None,
        )
        on(
            stored.success,
            lambda s, a, *c: advance(services, s, a, *c),
            [view.state, me, *config],
            outputs,
            me,
            api_name="feedback_next" if verdict == "up" else False,
            concurrency_limit=None,
        )
    on(
        view.skip.click,
        lambda s, a, *c: skip(services, s, a, *c),
        [view.state, me, *config],
        outputs,
        me,
        api_name="feedback_skip",
        concurrency_limit=None,
    )
    on(
        view.undo.click,
        lambda s, a, *c: undo_last(services, s, a, *c),
        [view.state, me, *config],
        outputs,
        me,
        api_name="feedback_undo",
        concurrency_limit=None,
    )
    for component in view.sampling.source_inputs():  # chosen by the user (the list refresh fires `change`)
        on(component.input, fresh, [view.state, me, *config], outputs, me, trigger_mode="always_last", api_name=False)
    lists = view.sampling.source_inputs()
    for event in (tab.select, *view.sampling.refresh_on()):
        on(event, lambda: sampling_lists(services, view.sampling), [], lists, api_name=False, show_progress="hidden")
