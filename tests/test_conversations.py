"""Conversations (a prompt of earlier user and assistant turns, then the last user turn) through each layer:
the transcript the Label and Feedback tabs show, CSV files that carry conversations, and Arena votes after
several turns. The whole loop in a browser, to a DPO run, is tests/test_browser_conversation.py."""

import json

import pytest
from datasets import load_from_disk

from alignstudio.core.formats import load_preferences, load_prompts, read_records, write_records
from alignstudio.core.workspace import Workspace
from alignstudio.services.arena import ArenaState
from alignstudio.services.container import Services
from alignstudio.training.data import load_training_data
from alignstudio.ui import arena, feedback, label
from alignstudio.ui.turns import prompt_markdown

CHAT = [
    {"role": "user", "content": "My cat is called <b>Tom</b> and likes [fish](http://x.example)."},
    {"role": "assistant", "content": "*Tom* is a fine name! ![x](http://img.example/a.png)"},
    {"role": "user", "content": "What is my cat called?"},
]


def test_a_single_turn_prompt_is_shown_as_before():
    assert prompt_markdown("**Prompt**", "default", "Say hi.") == "**Prompt** (default)\n\nSay hi."


def test_earlier_turns_are_shown_in_order_with_their_roles_and_escaped():
    shown = prompt_markdown("**Prompt**", "chat", CHAT[-1]["content"], CHAT[:-1])
    assert shown.startswith("**Prompt** (chat) · a conversation: 2 earlier turns, then the turn the answers reply to")
    user, assistant, last = shown.index("**User:**"), shown.index("**Assistant:**"), shown.index("**User (answered")
    assert user < assistant < last and shown.endswith("What is my cat called?")
    # no tag, link, image or emphasis comes from the turns' text: each is shown as written
    assert "<b>" not in shown and "&lt;b&gt;Tom&lt;/b&gt;" in shown
    assert "](" not in shown and "![" not in shown and "*Tom*" not in shown


def test_a_turn_that_opens_with_code_stays_code_and_a_system_turn_is_named():
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "```\n# not a heading\n```"}]
    history.append({"role": "assistant", "content": "Done."})
    shown = prompt_markdown("### Prompt", "s", "Again?", history)
    assert "**System:** Be brief." in shown
    assert "**User:**\n\n<pre><code># not a heading</code></pre>" in shown


# -- CSV files carry conversations as JSON cells (what `write_records` writes) ----------------------------------


def test_a_conversation_written_to_csv_reads_back_as_messages(tmp_path):
    rows = [
        {
            "prompt": CHAT,
            "chosen": [{"role": "assistant", "content": "Tom."}],
            "rejected": [{"role": "assistant", "content": "I do not know."}],
        },
        {
            "prompt": CHAT[:1],
            "chosen": [{"role": "assistant", "content": "Nice."}],
            "rejected": [{"role": "assistant", "content": "Fish are nice, too."}],
        },
    ]
    path = write_records(rows, tmp_path / "pairs.csv")
    [(_, first), _] = read_records(path)
    assert first["prompt"] == CHAT
    assert load_preferences(path)[0]["messages"] == CHAT
    training = load_training_data(path, "dpo").dataset
    assert training[0]["prompt"] == CHAT and training[0]["chosen"] == rows[0]["chosen"]
    prompts = write_records([{"prompt": CHAT}], tmp_path / "prompts.csv")
    with open(prompts, "a", encoding="utf-8") as handle:  # plain text that only looks like JSON stays text
        handle.write("[{not json\n")
    assert [item.messages for item in load_prompts(prompts)] == [CHAT, [{"role": "user", "content": "[{not json"}]]


# -- the tabs, over real services on the tiny model ------------------------------------------------------------


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("conversations")
    built = Services.build(Workspace.open(folder / "ws"), default_model=str(tiny_model_dir), prefetch_depth=1)
    (folder / "chat.jsonl").write_text(json.dumps({"prompt": CHAT}) + "\n")
    built.data.import_file(str(folder / "chat.jsonl"), prompts=True, name="chat")
    yield built
    built.close()


def test_the_label_tab_shows_the_earlier_turns_above_the_answers(services, tiny_model_dir):
    config = [label.FRESH, "chat", str(tiny_model_dir), "(same as A)", 0.7, 1.0, 0.95, 6, None, "", ""]
    state, prompt, *_ = label.next_pair(services, {}, "eve", *config)
    assert "&lt;b&gt;Tom&lt;/b&gt;" in prompt and "**Assistant:**" in prompt
    assert prompt.endswith("What is my cat called?")
    assert label.restore(services, state)[0] == prompt  # as shown again after a failed fetch
    label.acknowledge(services, "left", state, "eve", "", *config)
    assert label.undo_last(services, state, "eve", *config)[1] == prompt  # the undone pair, as it was shown
    [pair] = [p for p in services.store.pairs() if p.prompt_set == "chat"]
    assert pair.messages == CHAT


def test_the_feedback_tab_shows_the_earlier_turns_above_the_response(services, tiny_model_dir):
    config = ["chat", str(tiny_model_dir), 0.7, 0.95, 6, None]
    state, prompt, *_ = feedback.next_response(services, {}, "gus", *config)
    assert prompt.startswith("### Prompt (chat) · a conversation: 2 earlier turns")
    assert "&lt;b&gt;Tom&lt;/b&gt;" in prompt and prompt.endswith("What is my cat called?")


def test_an_arena_vote_after_several_turns_stores_the_whole_history_as_the_prompt(services, tiny_model_dir):
    model = str(tiny_model_dir)
    first = list(arena.send(services, None, "My cat is called Tom.", model, model, False, 0.7, 8))[-1][0]
    voted = arena.vote(services, "right", first, "carol")[0]  # the next turn continues from the right reply
    right_reply = ArenaState.from_dict(first).reply_right
    second = list(arena.send(services, voted, "What is my cat called?", model, model, False, 0.7, 8))[-1][0]
    arena.vote(services, "left", second, "carol")
    expected = [
        {"role": "user", "content": "My cat is called Tom."},
        {"role": "assistant", "content": right_reply},
        {"role": "user", "content": "What is my cat called?"},
    ]
    stored = services.store.pair(ArenaState.from_dict(second).turn_key)
    assert stored.messages == expected and stored.prompt_set == "arena"
    snapshot = load_from_disk(str(services.data.export("dpo", sources=["arena"]).path))
    assert expected in snapshot["prompt"]  # TRL's conversational form: the whole history is the prompt


def test_imported_conversational_pairs_keep_every_turn_and_show_them_from_the_queue(services, tiny_model_dir, tmp_path):
    row = {
        "prompt": CHAT,
        "chosen": [{"role": "assistant", "content": "Tom."}],
        "rejected": [{"role": "assistant", "content": "Fish."}],
    }
    (tmp_path / "pairs.jsonl").write_text(json.dumps(row) + "\n")
    assert (
        services.data.import_file(str(tmp_path / "pairs.jsonl"), name="imported")
        == "imported 1 preference pairs as trl"
    )
    [pair] = [p for p in services.store.pairs() if p.text_a == "Tom."]
    assert pair.messages == CHAT
    services.labeling.queue.fill({pair.id: 0.0})
    config = [label.QUEUE, "chat", str(tiny_model_dir), "(same as A)", 0.7, 1.0, 0.95, 6, None, "", ""]
    state, prompt, *_ = label.next_pair(services, {}, "eve", *config)
    assert state["shown"]["pair_id"] == pair.id
    assert "**Assistant:**" in prompt and prompt.endswith("What is my cat called?")
