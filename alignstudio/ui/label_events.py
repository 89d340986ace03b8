"""The Label tab's events: which handler of label.py answers which click, key or timer tick, and in what order.

A verdict runs as a chain: `acknowledge` (stored) -> `hold` (when no pair is ready: the placeholder, buttons off)
-> `advance` (the next pair) -> `settle` (buttons on for an unlabeled pair, the timer on while waiting).
"""

from __future__ import annotations

import gradio as gr

from ..services.container import Services
from . import guidelines, live_chip, ranking
from .common import on, sampling_lists, with_progress
from .label import (
    QUEUE,
    LabelView,
    acknowledge,
    acknowledge_edit,
    advance,
    advance_after_edit,
    edit_start,
    fill_queue,
    hold,
    next_pair,
    poll,
    restore,
    settle,
    skip_pair,
    typed_pair,
    undo_last,
)


def wire(view: LabelView, services: Services, demo: gr.Blocks, tab: gr.Tab, first=None) -> None:
    """`first`: the event after which the first pair is shown (default the page load)."""
    config = [view.source, *view.sampling.inputs()]
    outputs = view.pair_outputs()
    me = view.annotator
    following = dict(concurrency_limit=None)  # labels never wait behind another user's sampling
    held = [view.prompt, view.left, view.right, *view.verdict_buttons()]
    settled = [*view.verdict_buttons(), view.timer]
    hidden = dict(api_name=False, show_progress="hidden")

    def then_settle(event, restores: bool = False) -> None:
        """`restores`: the event follows a `hold` that may have put the placeholder over an unlabeled pair (a
        skip): if it fails, that pair comes back."""
        on(event.then, lambda s: settle(services, s), [view.state], settled, **hidden)
        if restores:
            pair = [view.prompt, view.left, view.right]
            on(event.failure, lambda s: restore(services, s), [view.state], pair, **hidden)

    def then_hold(event):
        return on(
            event,
            lambda s, *c: hold(services, s, *c),
            [view.state, *config],
            held,
            api_name=False,
            show_progress="hidden",
            **following,
        )

    then_settle(
        on(
            first or demo.load,
            lambda s, a, *c: next_pair(services, s, a, *c),
            [view.state, me, *config],
            outputs,
            me,
            api_name="label_first_pair",
        )
    )
    # every label is acknowledged on its own, then `label_next` shows the next pair (API clients call it too)
    for button, choice, strength in (
        (view.left_better, "left", None),
        (view.right_better, "right", None),
        (view.tie, "tie", None),
        (view.both_bad, "both_bad", None),
        *view.graded,
    ):
        stored = on(
            button.click,
            lambda s, a, r, *c, _choice=choice, _strength=strength: acknowledge(
                services, _choice, s, a, r, *c, strength=_strength
            ),
            [view.state, me, view.reason, *config],
            view.status,
            me,
            api_name=f"label_{choice}" + (f"_{strength}" if strength else ""),
            **following,
        )
        held_event = then_hold(stored.success)
        then_settle(
            on(
                held_event.then,
                lambda s, a, *c: advance(services, s, a, *c),
                [view.state, me, *config],
                outputs,
                me,
                api_name="label_next" if choice == "left" and not strength else False,
                **following,
            )
        )
    then_settle(
        on(
            then_hold(view.skip.click).then,
            lambda s, a, *c: skip_pair(services, s, a, *c),
            [view.state, me, *config],
            outputs,
            me,
            api_name="label_skip",
            **following,
        ),
        restores=True,
    )
    then_settle(
        on(
            view.undo.click,
            lambda s, a, *c: undo_last(services, s, a, *c),
            [view.state, me, *config],
            outputs,
            me,
            api_name="label_undo",
            **following,
        )
    )
    then_settle(
        on(
            view.sample_typed.click,
            lambda p, s, a, *c: typed_pair(services, p, s, a, *c),
            [view.typed_prompt, view.state, me, *config],
            outputs,
            me,
            api_name="label_typed_prompt",
        )
    )
    # while the tab waits for a pair (none ready in time, an empty queue), ask again every few seconds
    then_settle(
        on(
            view.timer.tick,
            lambda s, a, *c: poll(services, s, a, *c),
            [view.state, me, *config],
            outputs,
            me,
            api_name=False,
            show_progress="hidden",
            **following,
        )
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
    then_settle(
        on(
            then_hold(saved.success).then,
            lambda side, text, s, a, *c: advance_after_edit(services, side, text, s, a, *c),
            [view.edit_side, view.edit_text, view.state, me, *config],
            outputs,
            me,
            api_name=False,
            **following,
        )
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
        then_settle(
            on(
                component.input,
                lambda s, a, *c: next_pair(services, s, a, *c),
                [view.state, me, *config],
                outputs,
                me,
                trigger_mode="always_last",
                api_name=False,
            )
        )
    guidelines.wire(view.guidelines, services, view.state, me, demo.load)
    if view.ranking is not None:  # 3 or 4 answers per prompt: the ranking view (ui/ranking.py)
        ranking.wire(view.ranking, view, services, demo, first or demo.load)
    if view.live is not None:  # live mode's start, stop and chip (ui/live_chip.py)
        live_chip.wire(view.live, services, view.sampling.prompt_set, view.sampling.model_a)
    lists = view.sampling.source_inputs()
    for event in (demo.load, tab.select, *view.sampling.refresh_on()):
        on(event, lambda: sampling_lists(services, view.sampling), [], lists, api_name=False, show_progress="hidden")
