"""Feedback tab: one response at a time, thumbs up or down (the data KTO learns from)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.labeling.feedback import ShownResponse
from ..services.sampling.prefetch import NothingReady
from . import guidelines
from .common import SamplingControls, count_line, feed_config, on, sampling_controls, sampling_lists
from .render import escape_markdown_html
from .turns import prompt_markdown
from .waiting import POLL_S, POLL_WAIT_S, next_item, placeholder, settled, skipped, stopped, waiting

EMPTY = {"shown": None}
SAMPLING = "Sampling the next response ..."


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
    timer: gr.Timer  # on while the tab waits for a response (`poll`)
    guidelines: guidelines.GuidelinesPanel | None = None  # the labeling guidelines

    def outputs(self) -> list:
        return [self.state, self.prompt, self.response, self.reason, self.status]


def build(services: Services, annotator: gr.Textbox) -> FeedbackView:
    sampling = sampling_controls(services, "feedback", pair=False)
    guide = guidelines.build("feedback")
    prompt = gr.Markdown("Loading a response ...", elem_id="feedback-prompt")  # sampled when the tab opens
    gr.Markdown("### Response")
    response = gr.Markdown(elem_id="feedback-response")
    reason = gr.Textbox(label="Reason (optional)", lines=1, elem_id="feedback-reason")
    with gr.Row():  # text, not emoji: thumbs glyphs render as empty boxes where no emoji font is installed
        up = gr.Button("Good  [+]", variant="primary", elem_id="feedback-up", interactive=False)  # on: `settle`
        down = gr.Button("Bad  [-]", variant="stop", elem_id="feedback-down", interactive=False)
    with gr.Row():
        skip = gr.Button("Skip  [k]", size="sm", elem_id="feedback-skip")
        undo = gr.Button("Undo last  [u]", size="sm", elem_id="feedback-undo")
    status = gr.Markdown(elem_id="feedback-status")
    state, timer = gr.State(dict(EMPTY)), gr.Timer(POLL_S, active=False)
    return FeedbackView(
        annotator, sampling, prompt, response, reason, up, down, skip, undo, status, state, timer, guide
    )


_WORDS = {"up": "good", "down": "bad"}
SKIPPED = skipped(5)


def _response_markdown(shown: dict) -> tuple[str, str]:
    prompt_md = prompt_markdown("### Prompt", shown["prompt_set"], shown["prompt"], shown.get("history") or ())
    return prompt_md, escape_markdown_html(shown["text"])


def _status(services: Services, annotator: str, config: tuple, note: str = "") -> str:
    ready = ""
    if config:
        count = services.feedback.ready(feed_config("single", *config))
        ready = f"{count} response{'s' * (count != 1)} ready"
    return " · ".join(part for part in (note, count_line(services, annotator, "feedback"), ready) if part)


def _present(
    services: Services, state: dict, shown: ShownResponse, annotator: str, note: str = "", config: tuple = ()
) -> tuple:
    state = {"shown": asdict(shown)}
    return (state, *_response_markdown(state["shown"]), "", _status(services, annotator, config, note))


def _show_next(services: Services, state: dict, annotator: str, config: tuple, get, note=None) -> tuple:
    """The response `get()` hands out (None: nothing changes), or a placeholder while none is ready."""
    try:
        shown_next = get()
    except NothingReady as exc:  # waiting, not an error: the buttons go off and the timer asks again
        return waiting(), placeholder(f"{SAMPLING} ({exc})"), "", "", _status(services, annotator, config)
    if shown_next is None:
        return SKIPPED
    return _present(services, state, shown_next, annotator, note() if note else "", config)


def _fetch(services: Services, config: tuple, timeout: float = 300.0, restart: bool = True):
    return lambda: services.feedback.next_response(feed_config("single", *config), timeout, restart)


def _rated(services: Services):
    return lambda shown: services.feedback.is_rated(ShownResponse(**shown))


def next_response(services: Services, state: dict, annotator: str, *config) -> tuple:
    return _show_next(services, state, annotator, config, _fetch(services, config))


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
    waiting_now = (
        ""
        if services.feedback.ready(feed_config("single", *config))
        else " · sampling the next response: none is ready yet"
    )
    return f"Stored: **{word}** · {count_line(services, annotator, 'feedback')}{waiting_now}"


def _move_on(services: Services, state: dict, annotator: str, config: tuple, *, rated_only: bool) -> tuple:
    """The next response, once per shown one, however many clicks or retries ask for it."""
    done = _rated(services) if rated_only else (lambda shown: True)
    get = lambda: next_item(services.feedback.moved_on, state, _fetch(services, config), done)  # noqa: E731

    def last_rating() -> str:  # the acknowledgement stays on screen with the next response
        last = services.feedback.last(annotator) if rated_only else None
        return f"Last: **{_WORDS[last.verdict]}**" if last else ""

    return _show_next(services, state, annotator, config, get, last_rating)


def advance(services: Services, state: dict, annotator: str, *config) -> tuple:
    return _move_on(services, state, annotator, config, rated_only=True)


def skip(services: Services, state: dict, annotator: str, *config) -> tuple:
    return _move_on(services, state, annotator, config, rated_only=False)


def poll(services: Services, state: dict, annotator: str, *config) -> tuple:
    """While the tab waits: the next response if one is ready now, else nothing changes (the timer asks again)."""
    if state.get("shown") or not state.get("waiting"):
        return SKIPPED
    fetch = _fetch(services, config, POLL_WAIT_S, restart=False)
    try:
        shown_next = next_item(services.feedback.moved_on, state, fetch, _rated(services))
    except NothingReady:
        return SKIPPED
    except UserError as exc:  # sampling gave up meanwhile: say so and stop asking
        return (*stopped(str(exc)), "", count_line(services, annotator, "feedback"))
    return _present(services, state, shown_next, annotator, config=config) if shown_next else SKIPPED


def hold(services: Services, *config) -> tuple:
    """Right after a rating or a skip: when no response is ready, the one just rated leaves the screen for the
    placeholder and the buttons go off (no stale response to click)."""
    if services.feedback.ready(feed_config("single", *config)) > 0:
        return skipped(4)
    return placeholder(SAMPLING), "", gr.update(interactive=False), gr.update(interactive=False)


def _live(services: Services, state: dict) -> bool:
    shown = state.get("shown")
    return bool(shown) and not services.feedback.is_rated(ShownResponse(**shown))


def settle(services: Services, state: dict) -> tuple:
    """After every change of response: the buttons on only for an unrated response on screen, the timer on only
    while waiting (buttons and timer only: the response as an output would show a progress mark on it)."""
    return settled(2, state, _live(services, state))


def restore(services: Services, state: dict) -> tuple:
    """After a failed skip or fetch: the unrated response on screen again in place of the placeholder."""
    return _response_markdown(state["shown"]) if _live(services, state) else skipped(2)


def undo_last(services: Services, state: dict, annotator: str, *config) -> tuple:
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    shown = services.feedback.undo_last(annotator)
    return _present(services, state, shown, annotator, "Undid your last rating: here is its response again", config)


def wire(view: FeedbackView, services: Services, tab: gr.Tab) -> None:
    config = view.sampling.inputs()
    outputs = view.outputs()
    me = view.annotator
    following = dict(concurrency_limit=None)  # ratings never wait behind another user's sampling
    held = [view.prompt, view.response, view.up, view.down]

    def then_settle(event, restores: bool = False) -> None:
        """`restores`: after a skip (`hold` may have hidden an unrated response), a failure brings it back."""
        hidden = dict(api_name=False, show_progress="hidden")
        on(event.then, lambda s: settle(services, s), [view.state], [view.up, view.down, view.timer], **hidden)
        if restores:
            on(event.failure, lambda s: restore(services, s), [view.state], [view.prompt, view.response], **hidden)

    def then_hold(event):
        return on(event, lambda *c: hold(services, *c), config, held, api_name=False, show_progress="hidden")

    def fresh(state, annotator, *values):
        return next_response(services, state, annotator, *values)

    def first_time(state, annotator, *values):  # sample only when the tab is first opened
        if state.get("shown") or state.get("waiting"):
            return SKIPPED
        return fresh(state, annotator, *values)

    then_settle(on(tab.select, first_time, [view.state, me, *config], outputs, me, api_name=False))
    for button, verdict in ((view.up, "up"), (view.down, "down")):
        stored = on(
            button.click,
            lambda s, a, r, *c, _v=verdict: rate(services, _v, s, a, r, *c),
            [view.state, me, view.reason, *config],
            view.status,
            me,
            api_name=f"feedback_{verdict}",
            **following,
        )
        then_settle(
            on(
                then_hold(stored.success).then,
                lambda s, a, *c: advance(services, s, a, *c),
                [view.state, me, *config],
                outputs,
                me,
                api_name="feedback_next" if verdict == "up" else False,
                **following,
            )
        )
    for event, handler, name in (
        (then_hold(view.skip.click).then, skip, "feedback_skip"),
        (view.undo.click, undo_last, "feedback_undo"),
        (view.timer.tick, poll, False),
    ):
        then_settle(
            on(
                event,
                lambda s, a, *c, _handler=handler: _handler(services, s, a, *c),
                [view.state, me, *config],
                outputs,
                me,
                api_name=name,
                **following,
                **({} if name else {"show_progress": "hidden"}),
            ),
            restores=handler is skip,
        )
    for component in view.sampling.source_inputs():  # chosen by the user (the list refresh fires `change`)
        then_settle(
            on(
                component.input,
                fresh,
                [view.state, me, *config],
                outputs,
                me,
                trigger_mode="always_last",
                api_name=False,
            )
        )
    guidelines.wire(view.guidelines, services, view.state, me)
    lists = view.sampling.source_inputs()
    for event in (tab.select, *view.sampling.refresh_on()):
        on(event, lambda: sampling_lists(services, view.sampling), [], lists, api_name=False, show_progress="hidden")
