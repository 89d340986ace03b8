"""The Label, Feedback and Arena tabs' handlers (plain functions over real services on a tiny model): what the
annotator is told, what comes back on screen, and what the layout shows."""

import gradio as gr
import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.workspace import Workspace
from alignstudio.services.arena import ArenaState, identical
from alignstudio.services.container import Services
from alignstudio.ui import arena, label
from alignstudio.ui.app import build_app


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir):
    built = Services.build(
        Workspace.open(tmp_path_factory.mktemp("ws")), default_model=str(tiny_model_dir), prefetch_depth=1
    )
    yield built
    built.close()


def _config(model) -> list:
    return [label.FRESH, "default", str(model), "(same as A)", 0.7, 1.0, 0.95, 6, None, "", ""]


def test_a_saved_rewrite_is_confirmed_and_a_second_save_stores_nothing(services, tiny_model_dir):
    state, *_ = label.next_pair(services, {}, "eve", *_config(tiny_model_dir))
    first = label.acknowledge_edit(services, "A", "A better answer.", state, "eve", "", *_config(tiny_model_dir))
    assert first.startswith("Saved your rewrite of response A as the chosen response: \u201cA better answer.\u201d")
    assert "**1** labels by eve" in first
    again = label.acknowledge_edit(services, "B", "Another.", state, "eve", "", *_config(tiny_model_dir))
    assert again.startswith("Already stored") and services.store.label_count("eve") == 1
    shown_next = label.advance(services, state, "eve", *_config(tiny_model_dir))
    assert shown_next[0]["shown"]["key"] != state["shown"]["key"]
    status = shown_next[-1]
    assert "Last: **A is better**" in status or "Last: **B is better**" in status
    assert "prompts in 'default' labeled" in status and "ready" in status  # what is left, what is sampled ahead
    assert all(isinstance(v, type(gr.skip())) for v in label.advance(services, state, "eve", *_config(tiny_model_dir)))


def test_an_empty_queue_says_how_to_fill_it(services):
    with pytest.raises(UserError, match="Fill the queue button"):
        services.labeling.next_queued("eve")


def test_feedback_has_a_heading_and_buttons_that_render_without_an_emoji_font(services):
    demo = build_app(services)
    blocks = list(demo.blocks.values())
    buttons = {b.elem_id: b.value for b in blocks if isinstance(b, gr.Button)}
    assert buttons["feedback-up"] == "Good  [+]" and buttons["feedback-down"] == "Bad  [-]"
    assert all(ord(ch) < 0x2000 for ch in buttons["feedback-up"] + buttons["feedback-down"])
    assert any(isinstance(b, gr.Markdown) and b.value == "### Response" for b in blocks)


def test_arena_votes_open_on_complete_answers_and_regenerate_answers_the_same_turn(services, tiny_model_dir):
    model = str(tiny_model_dir)
    steps = list(arena.send(services, None, "Hello there", model, model, False, 0.7, 8))
    *streaming, last = steps
    assert all(not step[4]["interactive"] for step in streaming)  # votes closed while answers stream
    assert last[4]["interactive"] and last[3] in (
        "Vote when you have read both answers.",
        "Both answers are identical: a vote would say nothing. Regenerate, or send another message.",
    )
    first = ArenaState.from_dict(last[0])
    again = ArenaState.from_dict(
        list(arena.send(services, last[0], "", model, model, False, 0.7, 8, regenerate=True))[-1][0]
    )
    assert (again.user_turn, again.history) == (first.user_turn, first.history) and again.turn_key != first.turn_key
    voted = arena.vote(services, "left", again.to_dict(), "carol")
    assert "Vote stored" in voted[3] and not voted[4]["interactive"]  # one vote per turn
    with pytest.raises(UserError, match="nothing to regenerate"):
        list(arena.send(services, voted[0], "", model, model, False, 0.7, 8, regenerate=True))


def test_identical_answers_are_pointed_out():
    same = ArenaState("m", "m", False, user_turn="Hi", reply_left="Hello.", reply_right="Hello. ", voted=False)
    assert identical(same) and not identical(
        ArenaState("m", "m", False, user_turn="Hi", reply_left="Hello.", reply_right="Hi!", voted=False)
    )
