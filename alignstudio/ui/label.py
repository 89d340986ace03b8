"""Label tab: a prompt, two responses side by side, and the annotator's verdict.

Layout in `build`, plain handlers (values in, values out; testable without a browser), events in `wire`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.labeling import ShownPair, seen_as
from .common import SamplingControls, count_line, feed_config, on, sampling_controls, sampling_lists, with_progress
from .render import escape_markdown_html

EMPTY = {"shown": None}
FRESH, QUEUE = "fresh samples", "labeling queue (most uncertain first)"
BY_REWARD, BY_POLICY = "the newest reward model", "the newest trained model (its implicit reward)"


@dataclass
class LabelView:
    annotator: gr.Textbox
    source: gr.Radio
    sampling: SamplingControls
    typed_prompt: gr.Textbox
    sample_typed: gr.Button
    prompt: gr.Markdown
    left: gr.Markdown
    right: gr.Markdown
    reason: gr.Textbox
    left_better: gr.Button
    right_better: gr.Button
    tie: gr.Button
    both_bad: gr.Button
    skip: gr.Button
    undo: gr.Button
    edit_side: gr.Radio
    edit_text: gr.Textbox
    edit_save: gr.Button
    status: gr.Markdown
    state: gr.State
    queue_row: gr.Row
    fill_by: gr.Radio
    fill: gr.Button

    def pair_outputs(self) -> list:
        return [self.state, self.prompt, self.left, self.right, self.reason, self.edit_text, self.status]


def build(services: Services, annotator: gr.Textbox) -> LabelView:
    source = gr.Radio([FRESH, QUEUE], value=FRESH, label="Pairs from", elem_id="label-source")
    with gr.Row(visible=False) as queue_row:  # the queue's own fill, so nobody needs the CLI for it
        fill_by = gr.Radio(
            [BY_REWARD, BY_POLICY],
            value=BY_REWARD,
            label="Order the unlabeled pairs by",
            elem_id="label-fill-by",
            scale=3,
        )
        fill = gr.Button("Fill the queue", elem_id="label-fill-queue", scale=1)
    sampling = sampling_controls(services, "label", pair=True)
    with gr.Row():
        typed_prompt = gr.Textbox(
            label="Your own prompt",
            placeholder="type a prompt to sample a pair for it",
            elem_id="label-typed-prompt",
            scale=4,
        )
        sample_typed = gr.Button("Sample this prompt", elem_id="label-sample-typed", scale=1)
    prompt = gr.Markdown("Loading the first pair ...", elem_id="label-prompt")
    with gr.Row(equal_height=True):
        with gr.Column():
            gr.Markdown("### Response A")
            left = gr.Markdown(elem_id="label-left")
        with gr.Column():
            gr.Markdown("### Response B")
            right = gr.Markdown(elem_id="label-right")
    reason = gr.Textbox(label="Reason (optional)", lines=1, elem_id="label-reason")
    with gr.Row():
        left_better = gr.Button("A is better  [1]", variant="primary", elem_id="label-left-better")
        right_better = gr.Button("B is better  [2]", variant="primary", elem_id="label-right-better")
        tie = gr.Button("Tie  [3]", elem_id="label-tie")
        both_bad = gr.Button("Both bad  [4]", elem_id="label-both-bad")
    with gr.Row():
        skip = gr.Button("Skip  [s]", size="sm", elem_id="label-skip")
        undo = gr.Button("Undo last  [z]", size="sm", elem_id="label-undo")
    with gr.Accordion("Write a better answer (stored as the chosen response, marked human-edited)", open=False):
        edit_side = gr.Radio(["A", "B"], value="A", label="Start from response", elem_id="label-edit-side")
        edit_text = gr.Textbox(lines=8, label="Your answer", elem_id="label-edit-text")
        edit_save = gr.Button("Save as chosen", elem_id="label-edit-save")
    status = gr.Markdown(elem_id="label-status")
    state = gr.State(dict(EMPTY))
    return LabelView(
        annotator,
        source,
        sampling,
        typed_prompt,
        sample_typed,
        prompt,
        left,
        right,
        reason,
        left_better,
        right_better,
        tie,
        both_bad,
        skip,
        undo,
        edit_side,
        edit_text,
        edit_save,
        status,
        state,
        queue_row,
        fill_by,
        fill,
    )


# -- handlers ---------------------------------------------------------------------------------------------
# A verdict is acknowledged by itself (`acknowledge`: stored, with its idempotency key), and only then is the
# next pair fetched (`advance`): a slow or failed fetch never hides or repeats a stored label.


def _present(
    services: Services, state: dict, shown: ShownPair | None, annotator: str, note: str = "", config: tuple = ()
) -> tuple:
    state = {"shown": asdict(shown) if shown else None}
    status = " · ".join(
        part
        for part in (note, count_line(services, annotator, "preference"), _progress(services, shown, config))
        if part
    )
    if shown is None:
        return state, "", "", "", "", "", status
    prompt_md = f"**Prompt** ({escape_markdown_html(shown.prompt_set)})\n\n{escape_markdown_html(shown.prompt)}"
    return (
        state,
        prompt_md,
        escape_markdown_html(shown.left),
        escape_markdown_html(shown.right),
        "",
        shown.left,
        status,
    )


def _progress(services: Services, shown: ShownPair | None, config: tuple) -> str:
    """What is left in the current set, and how many pairs are sampled ahead."""
    if not config:
        return ""
    if config[0] == QUEUE:
        return f"{services.labeling.queue.waiting()} left in the queue"
    cfg = feed_config("pair", *config[1:])
    done, total = services.labeling.progress(cfg.prompt_set)
    ready = services.labeling.ready(cfg)
    return f"{done} of {total} prompts in {cfg.prompt_set!r} labeled · {ready} pair{'s' * (ready != 1)} ready"


def _fetch(services: Services, annotator: str, source: str, config: tuple) -> ShownPair:
    if source == QUEUE:
        return services.labeling.next_queued(annotator)
    return services.labeling.next_pair(feed_config("pair", *config))


def next_pair(services: Services, state: dict, annotator: str, source: str, *config) -> tuple:
    """Show a fresh pair (first load, skip, a new prompt set or model)."""
    return _present(services, state, _fetch(services, annotator, source, config), annotator, config=(source, *config))


def skip_pair(services: Services, state: dict, annotator: str, source: str, *config) -> tuple:
    """The next pair instead of this one; a second skip of the same pair (double click) does nothing."""
    shown = state.get("shown")
    if not shown:
        return next_pair(services, state, annotator, source, *config)
    shown_next = services.labeling.moved_on.once(shown["key"], lambda: _fetch(services, annotator, source, config))
    if shown_next is None:
        return tuple(gr.skip() for _ in range(7))
    return _present(services, state, shown_next, annotator, config=(source, *config))


def _shown(state: dict, annotator: str) -> ShownPair:
    if not state.get("shown"):
        raise UserError("there is no pair on screen yet")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    return ShownPair(**state["shown"])


def _ack_line(services: Services, ack, shown: ShownPair, annotator: str, source: str, config: tuple, saved: str) -> str:
    if ack.duplicate:
        return (
            f"Already stored your verdict on this pair (**{seen_as(shown.shown_left, ack.verdict)}**); "
            "nothing new was stored."
        )
    waiting = ""
    if source != QUEUE and services.labeling.ready(feed_config("pair", *config)) == 0:
        waiting = " · sampling the next pair: none is ready yet (sampling is behind your pace)"
    return f"{saved} · {count_line(services, annotator, 'preference')}{waiting}"


def acknowledge(services: Services, choice: str, state: dict, annotator: str, reason: str, source: str, *config) -> str:
    shown = _shown(state, annotator)
    ack = services.labeling.label(shown, choice, annotator=annotator, rationale=reason)
    return _ack_line(
        services, ack, shown, annotator, source, config, f"Stored: **{seen_as(shown.shown_left, ack.verdict)}**"
    )


def acknowledge_edit(
    services: Services, side: str, text: str, state: dict, annotator: str, reason: str, source: str, *config
) -> str:
    shown = _shown(state, annotator)
    ack = services.labeling.label_edited(
        shown, "left" if side == "A" else "right", text, annotator=annotator, rationale=reason
    )
    return _ack_line(services, ack, shown, annotator, source, config, "Saved your answer as the chosen response")


def advance(services: Services, state: dict, annotator: str, source: str, *config) -> tuple:
    """The next pair after a label: only once per labeled pair, however many clicks asked for it."""
    shown = state.get("shown")
    fetch = lambda: _fetch(services, annotator, source, config)  # noqa: E731
    if not shown:
        shown_next = fetch()
    elif services.labeling.is_labeled(ShownPair(**shown)):
        shown_next = services.labeling.moved_on.once(shown["key"], fetch)
    else:
        shown_next = None  # not labeled: nothing to move on from
    if shown_next is None:  # or another click already moved on
        return tuple(gr.skip() for _ in range(7))
    last = services.labeling.last(annotator)
    note = f"Last: **{seen_as(last.shown_left, last.verdict)}**" if last else ""
    return _present(services, state, shown_next, annotator, note, (source, *config))


def undo_last(services: Services, state: dict, annotator: str, source: str, *config) -> tuple:
    """Take back the newest label and bring its pair back on screen, to label again."""
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    shown = services.labeling.undo_last(annotator)
    return _present(
        services, state, shown, annotator, "Undid your last label: here is its pair again", (source, *config)
    )


def typed_pair(services: Services, prompt: str, state: dict, annotator: str, _source: str, *config) -> tuple:
    shown = services.labeling.typed_pair(prompt, feed_config("pair", *config))
    return _present(services, state, shown, annotator)


def fill_queue(services: Services, by: str, progress=None) -> str:
    """Queue every pair without a human label, the pairs the model is least sure about first."""
    score = services.labeling.scorer("policy" if by == BY_POLICY else "reward")  # the run's own beta and reference
    report = (lambda done, total: progress(done / total, desc=f"scored {done} of {total} pairs")) if progress else None
    count, disputed = services.labeling.fill_queue(score, report)
    return f"Queued {count} pairs, most uncertain first ({len(disputed)} where judges disagree)."


def edit_start(state: dict, side: str) -> str:
    shown = state.get("shown")
    if not shown:
        return ""
    return shown["left"] if side == "A" else shown["right"]


# -- events -------------------------------------------------------------------------------------------------


def wire(view: LabelView, services: Services, demo: gr.Blocks, tab: gr.Tab) -> None:
    config = [view.source, *view.sampling.inputs()]
    outputs = view.pair_outputs()
    me = view.annotator
    following = dict(concurrency_limit=None)  # labels never wait behind another user's sampling

    on(
        demo.load,
        lambda s, a, *c: next_pair(services, s, a, *c),
        [view.state, me, *config],
        outputs,
        me,
        api_name="label_first_pair",
    )
    # every label is acknowledged on its own, then `label_next` shows the next pair (API clients call it too)
    for button, choice in (
        (view.left_better, "left"),
        (view.right_better, "right"),
        (view.tie, "tie"),
        (view.both_bad, "both_bad"),
    ):
        stored = on(
            button.click,
            lambda s, a, r, *c, _choice=choice: acknowledge(services, _choice, s, a, r, *c),
            [view.state, me, view.reason, *config],
            view.status,
            me,
            api_name=f"label_{choice}",
            **following,
        )
        on(
            stored.success,
            lambda s, a, *c: advance(services, s, a, *c),
            [view.state, me, *config],
            outputs,
            me,
            api_name="label_next" if choice == "left" else False,
            **following,
        )
    on(
        view.skip.click,
        lambda s, a, *c: skip_pair(services, s, a, *c),
        [view.state, me, *config],
        outputs,
        me,
        api_name="label_skip",
        **following,
    )
    on(
        view.undo.click,
        lambda s, a, *c: undo_last(services, s, a, *c),
        [view.state, me, *config],
        outputs,
        me,
        api_name="label_undo",
        **following,
    )
    on(
        view.sample_typed.click,
        lambda p, s, a, *c: typed_pair(services, p, s, a, *c),
        [view.typed_prompt, view.state, me, *config],
        outputs,
        me,
        api_name="label_typed_prompt",
    )
    view.edit_side.change(edit_start, [view.state, view.edit_side], view.edit_text, api_name=False)
    saved = on(
        view.edit_save.click,
        lambda side, text, s, a, r, *c: acknowledge_edit(services, side, text, s, a, r, *c),
        [view.edit_side, view.edit_text, view.state, me, view.reason, *config],
        view.status,
        me,
        api_name="label_edited",
        **following,
    )
    on(
        saved.success,
        lambda s, a, *c: advance(services, s, a, *c),
        [view.state, me, *config],
        outputs,
        me,
        api_name=False,
        **following,
    )
    view.source.change(lambda source: gr.update(visible=source == QUEUE), view.source, view.queue_row, api_name=False)
    view.fill.click(
        with_progress(lambda by, progress: fill_queue(services, by, progress), [view.fill_by], [view.status]),
        [view.fill_by],
        view.status,
        api_name="label_fill_queue",
    )
    # new sampling numbers take effect with the next pair; a new prompt set or model (chosen by the user: `input`,
    # not `change`, which the list refresh below would also fire) shows one right away
    for component in (view.source, *view.sampling.source_inputs()):
        on(
            component.input,
            lambda s, a, *c: next_pair(services, s, a, *c),
            [view.state, me, *config],
            outputs,
            me,
            trigger_mode="always_last",
            api_name=False,
        )
    lists = view.sampling.source_inputs()
    for event in (demo.load, tab.select, *view.sampling.refresh_on()):
        on(event, lambda: sampling_lists(services, view.sampling), [], lists, api_name=False, show_progress="hidden")
