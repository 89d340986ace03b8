"""Arena tab: chat with two models side by side, vote, and see the leaderboard."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..core.errors import UserError
from ..services import from_values
from ..services.arena import ArenaSettings, ArenaState, identical, new_battle
from ..services.arena.ratings import RatingSettings
from ..services.container import Services
from .common import on
from .fields import setting_number
from .render import escape_markdown_html


@dataclass
class ArenaView:
    annotator: gr.Textbox
    model_x: gr.Dropdown
    model_y: gr.Dropdown
    anonymous: gr.Checkbox
    temperature: gr.Number
    max_new_tokens: gr.Number
    new: gr.Button
    left: gr.Chatbot
    right: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    regenerate: gr.Button
    vote_left: gr.Button
    vote_right: gr.Button
    vote_tie: gr.Button
    vote_both_bad: gr.Button
    reveal: gr.Markdown
    leaderboard: gr.Dataframe
    anchor: gr.Dropdown
    bootstrap_rounds: gr.Number
    summary: gr.Markdown
    refresh: gr.Button
    state: gr.State

    def chat_outputs(self) -> list:
        return [self.state, self.left, self.right, self.reveal, *self.votes()]

    def votes(self) -> list:
        return [self.vote_left, self.vote_right, self.vote_tie, self.vote_both_bad, self.regenerate]

    def board_outputs(self) -> list:
        return [self.leaderboard, self.summary]


def build(services: Services, annotator: gr.Textbox) -> ArenaView:
    names = services.generator_names() + services.live.offered()  # "live": the newest live version
    with gr.Row():
        model_x = gr.Dropdown(
            names, value=services.newest_model(), label="Model 1", elem_id="arena-model-x", allow_custom_value=True
        )
        model_y = gr.Dropdown(
            names, value=services.default_model, label="Model 2", elem_id="arena-model-y", allow_custom_value=True
        )
        anonymous = gr.Checkbox(
            True, label="Anonymous (names shown after the vote; sides shuffled)", elem_id="arena-anonymous"
        )
    with gr.Accordion("Generation settings", open=False):
        with gr.Row():
            temperature = setting_number(ArenaSettings, "temperature", "arena-temperature", info=None)
            max_new_tokens = setting_number(ArenaSettings, "max_new_tokens", "arena-max-new-tokens", info=None)
    new = gr.Button("New conversation", size="sm", elem_id="arena-new")
    with gr.Row(equal_height=True):
        left = gr.Chatbot(label="Model A", height=380, elem_id="arena-left")
        right = gr.Chatbot(label="Model B", height=380, elem_id="arena-right")
    with gr.Row():
        message = gr.Textbox(
            placeholder="Say something to both models ...", show_label=False, scale=5, elem_id="arena-message"
        )
        send = gr.Button("Send", variant="primary", scale=1, elem_id="arena-send")
    with gr.Row():  # votes open once both answers are complete, as in Chatbot Arena
        vote_left = gr.Button("A is better", elem_id="arena-vote-left", interactive=False)
        vote_right = gr.Button("B is better", elem_id="arena-vote-right", interactive=False)
        vote_tie = gr.Button("Tie", elem_id="arena-vote-tie", interactive=False)
        vote_both_bad = gr.Button("Both bad", elem_id="arena-vote-both-bad", interactive=False)
        regenerate = gr.Button("Regenerate", elem_id="arena-regenerate", interactive=False)
    reveal = gr.Markdown(elem_id="arena-reveal")
    # open: it is refreshed after every vote, and a closed accordion would drop the update
    with gr.Accordion("Leaderboard (Bradley-Terry from arena votes: raw and style-controlled)", open=True):
        leaderboard = gr.Dataframe(interactive=False, elem_id="arena-leaderboard")
        summary = gr.Markdown(elem_id="arena-style-summary")
        with gr.Row():
            anchor = gr.Dropdown(
                names,
                value=services.default_model,
                label="Anchor model",
                info=f"held at {RatingSettings().anchor_rating:g} (empty: the mean of all models is)",
                allow_custom_value=True,
                elem_id="arena-anchor",
            )
            bootstrap_rounds = setting_number(RatingSettings, "bootstrap_rounds", "arena-bootstrap-rounds")
        refresh = gr.Button("Refresh leaderboard", size="sm", elem_id="arena-refresh")
    return ArenaView(
        annotator,
        model_x,
        model_y,
        anonymous,
        temperature,
        max_new_tokens,
        new,
        left,
        right,
        message,
        send,
        regenerate,
        vote_left,
        vote_right,
        vote_tie,
        vote_both_bad,
        reveal,
        leaderboard,
        anchor,
        bootstrap_rounds,
        summary,
        refresh,
        gr.State(None),
    )


# -- handlers ---------------------------------------------------------------------------------------------


def _escaped(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": escape_markdown_html(m["content"])} for m in messages]


def _show(state: ArenaState, note: str = "") -> tuple:
    title_left, title_right = state.labels()
    open_turn = bool(state.user_turn) and state.complete and not state.voted
    return (
        state.to_dict(),
        gr.update(value=_escaped(state.transcript("left")), label=title_left),
        gr.update(value=_escaped(state.transcript("right")), label=title_right),
        note,
        *(gr.update(interactive=open_turn) for _ in range(5)),
    )


def start(model_x: str, model_y: str, anonymous: bool) -> tuple:
    return _show(new_battle(model_x, model_y, bool(anonymous)), "New conversation.")


def send(
    services: Services,
    state: dict | None,
    text: str,
    model_x: str,
    model_y: str,
    anonymous: bool,
    temperature,
    max_new_tokens,
    regenerate: bool = False,
):
    battle = ArenaState.from_dict(state) if state else new_battle(model_x, model_y, bool(anonymous))
    if not regenerate and (not text or not text.strip()):
        raise UserError("type a message first")
    settings = from_values(ArenaSettings, {"temperature": temperature, "max_new_tokens": max_new_tokens})
    for current in services.arena.turn(battle, text, settings, regenerate=regenerate):
        if not current.complete:
            yield (*_show(current, "Streaming ... (vote when both answers are complete)"), "")
    note = (
        "Both answers are identical: a vote would say nothing. Regenerate, or send another message."
        if identical(battle)
        else "Vote when you have read both answers."
    )
    yield (*_show(battle, note), "")


def vote(services: Services, choice: str, state: dict | None, annotator: str) -> tuple:
    if not state:
        raise UserError("start a conversation first")
    if not annotator.strip():
        raise UserError("enter your annotator name first")
    battle = ArenaState.from_dict(state)
    ack = services.arena.vote(battle, choice, annotator=annotator)
    stored = "This vote was already stored." if ack.duplicate else "Vote stored."
    note = (
        f"{stored} A was **{battle.model_left}**, B was **{battle.model_right}**. "
        "Keep chatting, or start a new conversation."
    )
    return _show(battle, note)


def model_lists(services: Services) -> tuple:
    """The model choices as they are now (a model trained since the page loaded is offered at once). Choices only:
    echoing the values sent when the tab opened would undo a model picked before this answer arrives."""
    names = services.generator_names() + services.live.offered()  # "live": the newest live version
    return gr.update(choices=names), gr.update(choices=names), gr.update(choices=names)


def leaderboard(services: Services, anchor: str, bootstrap_rounds) -> tuple:
    """The table (raw and style-controlled ratings, intervals or "too few votes") and the notes under it."""
    settings = from_values(RatingSettings, {"anchor": anchor or "", "bootstrap_rounds": bootstrap_rounds})
    board = services.arena.leaderboard(settings)
    if board.table.empty:
        return board.display(), "No arena votes yet: chat with two models and vote."
    return board.display(), board.summary()


# -- events -------------------------------------------------------------------------------------------------


def wire(view: ArenaView, services: Services, tab: gr.Tab) -> None:
    outputs = view.chat_outputs()
    settings = [view.model_x, view.model_y, view.anonymous, view.temperature, view.max_new_tokens]
    on(view.new.click, start, [view.model_x, view.model_y, view.anonymous], outputs, api_name="arena_new")

    def send_turn(state, text, *values):
        yield from send(services, state, text, *values)

    on(
        view.send.click,
        send_turn,
        [view.state, view.message, *settings],
        [*outputs, view.message],
        api_name="arena_send",
    )
    on(view.message.submit, send_turn, [view.state, view.message, *settings], [*outputs, view.message], api_name=False)

    def regenerate_turn(state, text, *values):
        yield from send(services, state, text, *values, regenerate=True)

    on(
        view.regenerate.click,
        regenerate_turn,
        [view.state, view.message, *settings],
        [*outputs, view.message],
        api_name="arena_regenerate",
    )
    board = [view.anchor, view.bootstrap_rounds]

    def show_board(anchor, rounds):
        return leaderboard(services, anchor, rounds)

    for button, choice in (
        (view.vote_left, "left"),
        (view.vote_right, "right"),
        (view.vote_tie, "tie"),
        (view.vote_both_bad, "both_bad"),
    ):
        stored = on(
            button.click,
            lambda s, a, _c=choice: vote(services, _c, s, a),
            [view.state, view.annotator],
            outputs,
            view.annotator,
            api_name=f"arena_vote_{choice}",
        )
        # the leaderboard follows each stored vote (the names are already revealed while it is refitted)
        on(stored.success, show_board, board, view.board_outputs(), api_name=False)
    on(tab.select, show_board, board, view.board_outputs(), api_name=False)
    on(
        tab.select,
        lambda: model_lists(services),
        [],
        [view.model_x, view.model_y, view.anchor],
        api_name=False,
        show_progress="hidden",
    )
    on(view.refresh.click, show_board, board, view.board_outputs(), api_name="arena_leaderboard")
