"""Label tab: a prompt, two responses side by side, and the annotator's verdict.

Layout in `build`, plain handlers (values in, values out; testable without a browser), events in `wire`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gradio as gr

from ..core.errors import UserError
from ..services.container import Services
from ..services.labeling import ShownPair, seen_as
from ..services.sampling.prefetch import NothingReady
from . import guidelines, live_chip
from .common import SamplingControls, count_line, feed_config, sampling_controls
from .ranking import RankView, build_setting
from .ranking import build as build_ranking
from .render import escape_markdown_html
from .turns import prompt_markdown
from .waiting import POLL_S, POLL_WAIT_S, next_item, placeholder, settled, skipped, stopped, waiting

EMPTY = {"shown": None}
FRESH, QUEUE = "fresh samples", "labeling queue (most uncertain first)"
BY_REWARD, BY_POLICY = "the newest reward model", "the newest trained model (its implicit reward)"
SAMPLING = "Sampling the next pair ..."
# the buttons that judge the pair on screen: off while no unlabeled pair is there
VERDICT_BUTTONS = (
    "label-left-better",
    "label-right-better",
    "label-tie",
    "label-both-bad",
    "label-edit-save",
    *(f"label-{side}-{strength}" for side in ("left", "right") for strength in ("much", "slight")),
)


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
    graded: list  # (button, choice, strength): "much" / "slightly" better per side, in VERDICT_BUTTONS' order
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
    timer: gr.Timer  # on while the tab waits for a pair (`poll`)
    guidelines: guidelines.GuidelinesPanel | None = None  # the labeling guidelines, and the admins' editor
    pairwise: gr.Column | None = None  # hidden while the prompt set ranks 3 or 4 answers (`ranking`)
    ranking: RankView | None = None
    live: live_chip.LiveControls | None = None  # live mode: its controls and chip (ui/live_chip.py)

    def pair_outputs(self) -> list:
        return [self.state, self.prompt, self.left, self.right, self.reason, self.edit_text, self.status]

    def verdict_buttons(self) -> list:
        """The buttons VERDICT_BUTTONS names, in that order."""
        return [self.left_better, self.right_better, self.tie, self.both_bad, self.edit_save] + [
            button for button, _, _ in self.graded
        ]


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
    guide = guidelines.build("label", editor=True)
    with gr.Column() as pairwise:  # the pairwise view; `ranking`'s panel replaces it for 3 or 4 answers
        prompt = gr.Markdown("Loading the first pair ...", elem_id="label-prompt")
        with gr.Row(equal_height=True):
            with gr.Column():
                gr.Markdown("### Response A")
                left = gr.Markdown(elem_id="label-left")
            with gr.Column():
                gr.Markdown("### Response B")
                right = gr.Markdown(elem_id="label-right")
        reason = gr.Textbox(label="Reason (optional)", lines=1, elem_id="label-reason")
        with gr.Row():  # off until a pair is on screen (`settle`)
            left_better = gr.Button(
                "A is better  [1]", variant="primary", elem_id="label-left-better", interactive=False
            )
            right_better = gr.Button(
                "B is better  [2]", variant="primary", elem_id="label-right-better", interactive=False
            )
            tie = gr.Button("Tie  [3]", elem_id="label-tie", interactive=False)
            both_bad = gr.Button("Both bad  [4]", elem_id="label-both-bad", interactive=False)
        with gr.Row():  # graded verdicts: small, so the row wraps two to a line on a phone
            graded = [
                (
                    gr.Button(
                        f"{name} {words}{keys}", size="sm", elem_id=f"label-{choice}-{strength}", interactive=False
                    ),
                    choice,
                    strength,
                )
                for choice, name in (("left", "A"), ("right", "B"))
                for strength, words, keys in (
                    ("much", "much better", "  [Shift+1]" if choice == "left" else "  [Shift+2]"),
                    ("slight", "slightly better", ""),
                )
            ]
        with gr.Row():
            skip = gr.Button("Skip  [s]", size="sm", elem_id="label-skip")
            undo = gr.Button("Undo last  [z]", size="sm", elem_id="label-undo")
        with gr.Accordion("Write a better answer (stored as the chosen response, marked human-edited)", open=False):
            edit_side = gr.Radio(["A", "B"], value="A", label="Start from response", elem_id="label-edit-side")
            edit_text = gr.Textbox(lines=8, label="Your answer", elem_id="label-edit-text")
            edit_save = gr.Button("Save as chosen", elem_id="label-edit-save", interactive=False)
    answers = build_setting()  # below the pair: on a phone the pair stays on the first screen
    rank_view = build_ranking(answers)
    live = live_chip.build()
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
        graded,
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
        gr.Timer(POLL_S, active=False),
        guide,
        pairwise,
        rank_view,
        live=live,
    )


# -- handlers ---------------------------------------------------------------------------------------------
# A verdict is acknowledged by itself (`acknowledge`: stored, with its idempotency key), and only then is the
# next pair fetched (`advance`): a slow or failed fetch never hides or repeats a stored label. While no pair is
# ready the tab waits (ui/waiting.py): a placeholder, the verdict buttons off, a timer asking again (`poll`).

SKIPPED = skipped(7)


def _pair_markdown(shown: dict) -> tuple[str, str, str]:
    """(prompt, left, right) of a pair on screen, as markdown that shows exactly its text."""
    prompt_md = prompt_markdown("**Prompt**", shown["prompt_set"], shown["prompt"], shown.get("history") or ())
    return prompt_md, escape_markdown_html(shown["left"]), escape_markdown_html(shown["right"])


def _status(services: Services, annotator: str, shown, config: tuple, note: str = "") -> str:
    parts = (note, count_line(services, annotator, "preference"), _progress(services, shown, config))
    return " · ".join(part for part in parts if part)


def _present(
    services: Services, state: dict, shown: ShownPair | None, annotator: str, note: str = "", config: tuple = ()
) -> tuple:
    state = {"shown": asdict(shown) if shown else None}
    status = _status(services, annotator, shown, config, note)
    if shown is None:
        return state, "", "", "", "", "", status
    return (state, *_pair_markdown(state["shown"]), "", shown.left, status)


def _waiting(services: Services, annotator: str, source: str, config: tuple, why: str) -> tuple:
    """No pair yet (sampling is behind, the queue is empty): say so in the pair's place; the buttons go off."""
    said = f"{why}: waiting for queued pairs ..." if source == QUEUE else f"{SAMPLING} ({why})"
    status = _status(services, annotator, None, (source, *config))
    return waiting(), placeholder(said), "", "", "", "", status


def _progress(services: Services, shown: ShownPair | None, config: tuple) -> str:
    """What is left in the current set, and how many pairs are sampled ahead."""
    if not config:
        return ""
    if config[0] == QUEUE:  # `note`: the campaign's pairs complete, in progress, pending (several annotators per pair)
        return f"{services.labeling.queue.waiting()} left in the queue{services.labeling.campaigns.note(queued=True)}"
    cfg = live_chip.live_config(services, *config[1:])
    done, total = services.labeling.progress(cfg.prompt_set)
    ready, note = services.labeling.ready(cfg), services.labeling.campaigns.note(cfg.prompt_set)
    return f"{done} of {total} prompts in {cfg.prompt_set!r} labeled · {ready} pair{'s' * (ready != 1)} ready{note}"


def _fetch(
    services: Services, annotator: str, source: str, config: tuple, timeout: float = 300.0, restart: bool = True
) -> ShownPair:
    if source == QUEUE:
        return services.labeling.next_queued(annotator)
    return services.labeling.next_pair(live_chip.live_config(services, *config), timeout, restart, annotator)


def _show_next(services: Services, state: dict, annotator: str, source: str, config: tuple, get, note=None) -> tuple:
    """The pair `get()` hands out (None: nothing changes), or the placeholder while none is ready."""
    try:
        shown_next = get()
    except NothingReady as exc:
        return _waiting(services, annotator, source, config, str(exc))
    if shown_next is None:
        return SKIPPED
    return _present(services, state, shown_next, annotator, note() if note else "", (source, *config))


def _labeled(services: Services):
    return lambda shown: services.labeling.is_labeled(ShownPair(**shown))


def next_pair(services: Services, state: dict, annotator: str, source: str, *config) -> tuple:
    """Show a fresh pair (first load, a new prompt set or model)."""
    return _show_next(services, state, annotator, source, config, lambda: _fetch(services, annotator, source, config))


def skip_pair(services: Services, state: dict, annotator: str, source: str, *config) -> tuple:
    """The next pair instead of this one; a second skip of the same pair (double click) does nothing."""
    fetch = lambda: _fetch(services, annotator, source, config)  # noqa: E731
    get = lambda: next_item(services.labeling.moved_on, state, fetch, lambda shown: True)  # noqa: E731
    return _show_next(services, state, annotator, source, config, get)


def poll(services: Services, state: dict, annotator: str, source: str, *config) -> tuple:
    """While the tab waits: the next pair if one is ready now, else nothing changes (the timer asks again)."""
    if state.get("shown") or not state.get("waiting"):
        return SKIPPED
    fetch = lambda: _fetch(services, annotator, source, config, POLL_WAIT_S, restart=False)  # noqa: E731
    get = lambda: next_item(services.labeling.moved_on, state, fetch, _labeled(services))  # noqa: E731
    try:
        shown_next = get()
    except NothingReady:
        return SKIPPED  # still waiting: the placeholder stays as it is
    except UserError as exc:  # sampling gave up meanwhile: say so and stop asking
        return (*stopped(str(exc)), "", "", "", "", count_line(services, annotator, "preference"))
    return _present(services, state, shown_next, annotator, config=(source, *config)) if shown_next else SKIPPED


def hold(services: Services, state: dict, source: str, *config) -> tuple:
    """Right after a label or a skip, before the next pair is fetched: when none is ready, the pair just
    labeled leaves the screen for the placeholder and the verdict buttons go off (no stale pair to click)."""
    if source == QUEUE or services.labeling.ready(live_chip.live_config(services, *config)) > 0:
        return skipped(3 + len(VERDICT_BUTTONS))  # the next pair comes at once
    return (placeholder(SAMPLING), "", "", *(gr.update(interactive=False) for _ in VERDICT_BUTTONS))


def _live(services: Services, state: dict) -> bool:
    shown = state.get("shown")
    return bool(shown) and not services.labeling.is_labeled(ShownPair(**shown))


def settle(services: Services, state: dict) -> tuple:
    """After every change of pair: the verdict buttons on only for an unlabeled pair on screen, the timer on only
    while waiting. (Buttons and timer only: a pair's text as an output would show a progress mark on it.)"""
    return settled(len(VERDICT_BUTTONS), state, _live(services, state))


def restore(services: Services, state: dict) -> tuple:
    """After a failed skip or fetch: the unlabeled pair on screen again in place of the placeholder `hold` put."""
    return _pair_markdown(state["shown"]) if _live(services, state) else skipped(3)


def _shown(state: dict, annotator: str) -> ShownPair:
    if not state.get("shown"):
        raise UserError("there is no pair on screen yet")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    return ShownPair(**state["shown"])


def _ack_line(services: Services, ack, shown: ShownPair, annotator: str, source: str, config: tuple, saved: str) -> str:
    if ack.duplicate:
        return (
            f"Already stored your verdict on this pair (**{seen_as(shown.shown_left, ack.verdict, ack.strength)}**); "
            "nothing new was stored."
        )
    waiting_now = ""
    if source != QUEUE and services.labeling.ready(live_chip.live_config(services, *config)) == 0:
        waiting_now = " · sampling the next pair: none is ready yet (sampling is behind your pace)"
    return f"{saved} · {count_line(services, annotator, 'preference')}{waiting_now}"


def acknowledge(
    services: Services, choice: str, state: dict, annotator: str, reason: str, source: str, *config, strength=None
) -> str:
    """Store the verdict; `strength` ("much" / "slight") grades a left or right one."""
    shown = _shown(state, annotator)
    ack = services.labeling.label(shown, choice, annotator=annotator, rationale=reason, strength=strength)
    saved = f"Stored: **{seen_as(shown.shown_left, ack.verdict, ack.strength)}**" + live_chip.learn(services, ack)
    return _ack_line(services, ack, shown, annotator, source, config, saved)


def _rewrite_saved(side: str, text: str) -> str:
    """The confirmation that names the rewrite: which response it replaces, and how it begins."""
    start = " ".join(text.split())
    start = start if len(start) <= 60 else start[:60] + "..."
    return f"Saved your rewrite of response {side} as the chosen response: \u201c{escape_markdown_html(start)}\u201d"


def acknowledge_edit(
    services: Services, side: str, text: str, state: dict, annotator: str, reason: str, source: str, *config
) -> str:
    shown = _shown(state, annotator)
    ack = services.labeling.label_edited(
        shown, "left" if side == "A" else "right", text, annotator=annotator, rationale=reason
    )
    saved = _rewrite_saved(side, text) + live_chip.learn(services, ack, text)
    return _ack_line(services, ack, shown, annotator, source, config, saved)


def advance(services: Services, state: dict, annotator: str, source: str, *config, note=None) -> tuple:
    """The next pair after a label: only once per labeled pair, however many clicks asked for it."""
    fetch = lambda: _fetch(services, annotator, source, config)  # noqa: E731

    def last_label() -> str:
        last = services.labeling.last(annotator)
        return f"Last: **{seen_as(last.shown_left, last.verdict, last.strength)}**" if last else ""

    get = lambda: next_item(services.labeling.moved_on, state, fetch, _labeled(services))  # noqa: E731
    return _show_next(services, state, annotator, source, config, get, note or last_label)


def advance_after_edit(
    services: Services, side: str, text: str, state: dict, annotator: str, source: str, *config
) -> tuple:
    """`advance`, with the rewrite named beside the next pair (the "Saved" line is replaced at once)."""
    return advance(services, state, annotator, source, *config, note=lambda: "Last: " + _rewrite_saved(side, text))


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
