"""Label tab: a prompt, two responses side by side, and the annotator's verdict.

Layout in `build`, plain handlers (values in, values out; testable without a browser), events in `wire`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.labeling import ShownPair
from .common import SamplingControls, count_line, feed_config, on, sampling_controls
from .render import escape_markdown_html

EMPTY = {"shown": None, "history": []}
FRESH, QUEUE = "fresh samples", "labeling queue (most uncertain first)"


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

    def pair_outputs(self) -> list:
        return [self.state, self.prompt, self.left, self.right, self.reason, self.edit_text, self.status]


def build(services: Services, annotator: gr.Textbox) -> LabelView:
    source = gr.Radio([FRESH, QUEUE], value=FRESH, label="Pairs from", elem_id="label-source")
    sampling = sampling_controls(services, "label", pair=True)
    with gr.Row():
        typed_prompt = gr.Textbox(label="Your own prompt", placeholder="type a prompt to sample a pair for it",
                                  elem_id="label-typed-prompt", scale=4)
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
    return LabelView(annotator, source, sampling, typed_prompt, sample_typed, prompt, left, right, reason, left_better,
                     right_better, tie, both_bad, skip, undo, edit_side, edit_text, edit_save, status, state)


# -- handlers ---------------------------------------------------------------------------------------------


def _present(services: Services, state: dict, shown: ShownPair | None, annotator: str, note: str = "") -> tuple:
    state = {"shown": asdict(shown) if shown else None, "history": list(state.get("history", []))}
    status = " · ".join(part for part in (note, count_line(services, annotator, "preference")) if part)
    if shown is None:
        return state, "", "", "", "", "", status
    prompt_md = f"**Prompt** ({shown.prompt_set})\n\n{escape_markdown_html(shown.prompt)}"
    return (state, prompt_md, escape_markdown_html(shown.left), escape_markdown_html(shown.right), "", shown.left,
            status)


def next_pair(services: Services, state: dict, annotator: str, source: str, *config) -> tuple:
    if source == QUEUE:
        shown = services.labeling.next_queued(annotator)
    else:
        shown = services.labeling.next_pair(feed_config("pair", *config))
    return _present(services, state, shown, annotator)


def _shown(state: dict, annotator: str) -> ShownPair:
    if not state.get("shown"):
        raise UserError("there is no pair on screen yet")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    return ShownPair(**state["shown"])


def submit_label(services: Services, choice: str, state: dict, annotator: str, reason: str, source: str,
                 *config) -> tuple:
    event_id = services.labeling.label(_shown(state, annotator), choice, annotator=annotator, rationale=reason)
    state = {"shown": state["shown"], "history": [*state.get("history", []), event_id]}
    return next_pair(services, state, annotator, source, *config)


def save_edit(services: Services, side: str, text: str, state: dict, annotator: str, reason: str, source: str,
              *config) -> tuple:
    event_id = services.labeling.label_edited(_shown(state, annotator), "left" if side == "A" else "right", text,
                                              annotator=annotator, rationale=reason)
    state = {"shown": state["shown"], "history": [*state.get("history", []), event_id]}
    return next_pair(services, state, annotator, source, *config)


def undo_last(services: Services, state: dict, annotator: str) -> tuple:
    history = list(state.get("history", []))
    if not history:
        raise UserError("nothing to undo")
    services.labeling.undo(history.pop(), annotator=annotator)
    state = {"shown": state.get("shown"), "history": history}
    return state, f"Undid your last label · {count_line(services, annotator, 'preference')}"


def typed_pair(services: Services, prompt: str, state: dict, annotator: str, _source: str, *config) -> tuple:
    cfg = feed_config("pair", *config)
    gen_a = services.generators.get(cfg.model_a)
    gen_b = services.generators.get(cfg.model_b) if cfg.model_b else None
    shown = services.labeling.pair_for_prompt(prompt, cfg.settings, gen_a, gen_b)
    return _present(services, state, shown, annotator)


def edit_start(state: dict, side: str) -> str:
    shown = state.get("shown")
    if not shown:
        return ""
    return shown["left"] if side == "A" else shown["right"]


# -- events -------------------------------------------------------------------------------------------------


def wire(view: LabelView, services: Services, demo: gr.Blocks) -> None:
    config = [view.source, *view.sampling.inputs()]
    outputs = view.pair_outputs()
    me = view.annotator
    following = dict(concurrency_limit=None)  # labels never wait behind another user's sampling

    on(demo.load, lambda s, a, *c: next_pair(services, s, a, *c), [view.state, me, *config], outputs, me,
       api_name="label_first_pair")
    for button, choice in ((view.left_better, "left"), (view.right_better, "right"), (view.tie, "tie"),
                           (view.both_bad, "both_bad")):
        on(button.click, lambda s, a, r, *c, _choice=choice: submit_label(services, _choice, s, a, r, *c),
           [view.state, me, view.reason, *config], outputs, me, api_name=f"label_{choice}", **following)
    on(view.skip.click, lambda s, a, *c: next_pair(services, s, a, *c), [view.state, me, *config], outputs, me,
       api_name="label_skip", **following)
    on(view.undo.click, lambda s, a: undo_last(services, s, a), [view.state, me], [view.state, view.status], me,
       api_name="label_undo", **following)
    on(view.sample_typed.click, lambda p, s, a, *c: typed_pair(services, p, s, a, *c),
       [view.typed_prompt, view.state, me, *config], outputs, me, api_name="label_typed_prompt")
    view.edit_side.change(edit_start, [view.state, view.edit_side], view.edit_text, api_name=False)
    on(view.edit_save.click, lambda side, text, s, a, r, *c: save_edit(services, side, text, s, a, r, *c),
       [view.edit_side, view.edit_text, view.state, me, view.reason, *config], outputs, me,
       api_name="label_edited")
    # new sampling numbers take effect with the next pair; a new prompt set or model shows one right away
    for component in (view.source, *view.sampling.source_inputs()):
        on(component.change, lambda s, a, *c: next_pair(services, s, a, *c), [view.state, me, *config], outputs,
           me, trigger_mode="always_last", api_name=False)
