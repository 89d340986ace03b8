"""Label tab: a prompt, two responses side by side, and the annotator's verdict.

Layout in `build`, plain handlers (values in, values out; testable without a browser), events in `wire`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.labeling import ShownPair
from ..services.prefetch import FeedConfig
from ..services.sampling import SamplingSettings
from .render import escape_markdown_html

SAME_MODEL = "(same as A)"
EMPTY = {"shown": None, "history": []}


@dataclass
class LabelView:
    annotator: gr.Textbox
    prompt_set: gr.Dropdown
    model_a: gr.Dropdown
    model_b: gr.Dropdown
    temperature_a: gr.Number
    temperature_b: gr.Number
    top_p: gr.Number
    max_new_tokens: gr.Number
    seed: gr.Number
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

    def config_inputs(self) -> list:
        return [self.prompt_set, self.model_a, self.model_b, self.temperature_a, self.temperature_b, self.top_p,
                self.max_new_tokens, self.seed]

    def pair_outputs(self) -> list:
        return [self.state, self.prompt, self.left, self.right, self.reason, self.edit_text, self.status]


def build(services: Services) -> LabelView:
    models = services.registry.names()
    with gr.Row():
        annotator = gr.Textbox(label="Annotator", placeholder="your name", elem_id="label-annotator", scale=1)
        prompt_set = gr.Dropdown(services.prompt_sets.names(), value="default", label="Prompt set",
                                 elem_id="label-prompt-set", scale=1)
    with gr.Accordion("Sampling settings", open=False):
        with gr.Row():
            model_a = gr.Dropdown(models, value=services.default_model, label="Model A", elem_id="label-model-a",
                                  allow_custom_value=True)
            model_b = gr.Dropdown([SAME_MODEL, *models], value=SAME_MODEL, label="Model B",
                                  elem_id="label-model-b", allow_custom_value=True)
        with gr.Row():
            temperature_a = gr.Number(0.7, label="Temperature A", minimum=0.05, maximum=2.0, step=0.05,
                                      elem_id="label-temperature-a")
            temperature_b = gr.Number(1.0, label="Temperature B", minimum=0.05, maximum=2.0, step=0.05,
                                      elem_id="label-temperature-b")
            top_p = gr.Number(0.95, label="top_p", minimum=0.01, maximum=1.0, step=0.01, elem_id="label-top-p")
            max_new_tokens = gr.Number(128, label="Max new tokens", minimum=1, maximum=2048, precision=0,
                                       elem_id="label-max-new-tokens")
            seed = gr.Number(None, label="Seed (empty = random)", precision=0, elem_id="label-seed")
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
    return LabelView(annotator, prompt_set, model_a, model_b, temperature_a, temperature_b, top_p, max_new_tokens,
                     seed, typed_prompt, sample_typed, prompt, left, right, reason, left_better, right_better, tie,
                     both_bad, skip, undo, edit_side, edit_text, edit_save, status, state)


# -- handlers ---------------------------------------------------------------------------------------------


def feed_config(prompt_set, model_a, model_b, temperature_a, temperature_b, top_p, max_new_tokens,
                seed) -> FeedConfig:
    settings = SamplingSettings(
        temperature_a=float(temperature_a), temperature_b=float(temperature_b), top_p=float(top_p),
        max_new_tokens=int(max_new_tokens), seed=None if seed in (None, "") else int(seed),
    )
    return FeedConfig(prompt_set, model_a, None if model_b in (None, "", SAME_MODEL) else model_b, settings)


def _count_line(services: Services, annotator: str) -> str:
    done = services.store.label_count(annotator.strip())
    who = annotator.strip() or "anonymous"
    return f"**{done}** labels by {who}"


def _present(services: Services, state: dict, shown: ShownPair | None, annotator: str, note: str = "") -> tuple:
    state = {"shown": asdict(shown) if shown else None, "history": list(state.get("history", []))}
    status = " · ".join(part for part in (note, _count_line(services, annotator)) if part)
    if shown is None:
        return state, "", "", "", "", "", status
    prompt_md = f"**Prompt** ({shown.prompt_set})\n\n{escape_markdown_html(shown.prompt)}"
    return (state, prompt_md, escape_markdown_html(shown.left), escape_markdown_html(shown.right), "", shown.left,
            status)


def next_pair(services: Services, state: dict, annotator: str, *config) -> tuple:
    shown = services.labeling.next_pair(feed_config(*config))
    return _present(services, state, shown, annotator)


def submit_label(services: Services, choice: str, state: dict, annotator: str, reason: str, *config) -> tuple:
    if not state.get("shown"):
        raise UserError("there is no pair on screen yet")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    shown = ShownPair(**state["shown"])
    event_id = services.labeling.label(shown, choice, annotator=annotator, rationale=reason)
    state = {"shown": state["shown"], "history": [*state.get("history", []), event_id]}
    return next_pair(services, state, annotator, *config)


def save_edit(services: Services, side: str, text: str, state: dict, annotator: str, reason: str, *config) -> tuple:
    if not state.get("shown"):
        raise UserError("there is no pair on screen yet")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    shown = ShownPair(**state["shown"])
    event_id = services.labeling.label_edited(shown, "left" if side == "A" else "right", text,
                                              annotator=annotator, rationale=reason)
    state = {"shown": state["shown"], "history": [*state.get("history", []), event_id]}
    return next_pair(services, state, annotator, *config)


def undo_last(services: Services, state: dict, annotator: str) -> tuple:
    history = list(state.get("history", []))
    if not history:
        raise UserError("nothing to undo")
    services.labeling.undo(history.pop(), annotator=annotator)
    state = {"shown": state.get("shown"), "history": history}
    return state, f"Undid your last label · {_count_line(services, annotator)}"


def typed_pair(services: Services, prompt: str, state: dict, annotator: str, *config) -> tuple:
    cfg = feed_config(*config)
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


def _guard(fn, outputs_count: int):
    """Turn a UserError into a visible gr.Warning and leave every output as it was."""

    def wrapped(*args):
        try:
            return fn(*args)
        except UserError as exc:
            gr.Warning(str(exc))
            return tuple(gr.skip() for _ in range(outputs_count))

    return wrapped


def wire(view: LabelView, services: Services, demo: gr.Blocks) -> None:
    config = view.config_inputs()
    outputs = view.pair_outputs()
    n = len(outputs)

    demo.load(_guard(lambda s, a, *c: next_pair(services, s, a, *c), n),
              [view.state, view.annotator, *config], outputs)
    for button, choice in ((view.left_better, "left"), (view.right_better, "right"), (view.tie, "tie"),
                           (view.both_bad, "both_bad")):
        button.click(_guard(lambda s, a, r, *c, _choice=choice: submit_label(services, _choice, s, a, r, *c), n),
                     [view.state, view.annotator, view.reason, *config], outputs, concurrency_limit=None)
    view.skip.click(_guard(lambda s, a, *c: next_pair(services, s, a, *c), n),
                    [view.state, view.annotator, *config], outputs, concurrency_limit=None)
    view.undo.click(_guard(lambda s, a: undo_last(services, s, a), 2), [view.state, view.annotator],
                    [view.state, view.status], concurrency_limit=None)
    view.sample_typed.click(_guard(lambda p, s, a, *c: typed_pair(services, p, s, a, *c), n),
                            [view.typed_prompt, view.state, view.annotator, *config], outputs)
    view.edit_side.change(edit_start, [view.state, view.edit_side], view.edit_text)
    view.edit_save.click(
        _guard(lambda side, text, s, a, r, *c: save_edit(services, side, text, s, a, r, *c), n),
        [view.edit_side, view.edit_text, view.state, view.annotator, view.reason, *config], outputs)
    # new sampling numbers take effect with the next pair; a new prompt set or model shows one right away
    for component in (view.prompt_set, view.model_a, view.model_b):
        component.change(_guard(lambda s, a, *c: next_pair(services, s, a, *c), n),
                         [view.state, view.annotator, *config], outputs, trigger_mode="always_last")
