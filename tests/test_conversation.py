"""TRL conversational-form helpers: messages, text, and the problems TRL would trip on."""

import numpy as np
import pytest

from alignstudio.core.conversation import as_messages, conversation_problems, is_conversational, text_of


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_as_messages_wraps_plain_text_with_the_given_role():
    assert as_messages("Hi there", "user") == [{"role": "user", "content": "Hi there"}]
    assert as_messages("Hello!", "assistant") == [{"role": "assistant", "content": "Hello!"}]


def test_as_messages_copies_message_lists_and_reads_tuples_and_arrays():
    original = [user("a")]
    copied = as_messages(original)
    assert copied == original and copied[0] is not original[0]
    assert as_messages((user("a"), assistant("b"))) == [user("a"), assistant("b")]
    assert as_messages(np.array([user("a")], dtype=object)) == [user("a")]


def test_as_messages_rejects_other_values():
    with pytest.raises(TypeError):
        as_messages(42)
    with pytest.raises(TypeError):
        as_messages(["not a message"])


def test_text_of_both_forms():
    assert text_of("plain") == "plain"
    assert text_of([user("one"), assistant("two")]) == "one\ntwo"
    assert text_of(None) == ""
    multimodal = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "describe"}]}]
    assert text_of(multimodal) == "describe"


def test_is_conversational():
    assert is_conversational([user("x")])
    assert not is_conversational("x")
    assert not is_conversational([])
    assert not is_conversational(["x"])


def test_well_formed_inputs_have_no_problems():
    assert conversation_problems("What is 2+2?", "4") == []
    system = {"role": "system", "content": "Be brief."}
    assert conversation_problems([system, user("2+2?")], [assistant("4")]) == []
    multi_turn = [user("hi"), assistant("hello"), user("2+2?")]
    assert conversation_problems(multi_turn, [assistant("4")]) == []
    tool_flow = [user("weather?")]
    completion = [assistant("calling"), {"role": "tool", "content": "sunny"}, assistant("It is sunny.")]
    assert conversation_problems(tool_flow, completion) == []


@pytest.mark.parametrize(
    ("prompt", "completion", "expected"),
    [
        ([user("q")], [user("not the model")], "chosen turn 1 has role 'user'"),
        ([user("q")], [{"role": "tool", "content": "result"}], "chosen has no assistant turn"),
        ([{"role": "usr", "content": "q"}], [assistant("a")], "unknown role 'usr'"),
        ([user("q")], [assistant("   ")], "chosen turn 1 is empty"),
        ([user("")], [assistant("a")], "prompt turn 1 is empty"),
        ([user("q"), assistant("a")], [assistant("b")], "prompt's last turn is 'assistant'"),
        ([user("q")], [{"role": "assistant", "content": 3}], "content is int, not text"),
        ([user("q")], [{"role": "assistant"}], "has no content"),
        ([user("q")], "plain answer", "use one form for both"),
        ("plain question", [assistant("a")], "use one form for both"),
        ([user("q"), {"role": "system", "content": "late"}, user("q2")], [assistant("a")], "belongs at the start"),
        ([], [assistant("a")], "prompt has no turns"),
        ([user("q")], [], "chosen has no turns"),
        (None, "a", "prompt is missing"),
        ("q", 7, "chosen must be text or a list of messages"),
    ],
)
def test_problems_are_named(prompt, completion, expected):
    problems = conversation_problems(prompt, completion, completion_name="chosen")
    assert any(expected in p for p in problems), problems


def test_completion_name_defaults_to_completion():
    assert conversation_problems([user("q")], [user("x")]) == [
        "completion turn 1 has role 'user'; a completion holds the model's reply",
        "completion has no assistant turn",
    ]
