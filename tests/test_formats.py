"""Prompt and preference files: good ones load, malformed ones give one clear error naming line and field."""

import json

import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.formats import MAX_FIELD_CHARS, load_preferences, load_prompts, write_records
from alignstudio.services.sampling.prompt_sets import SHIPPED, PromptSets


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_shipped_prompt_sets_are_large_and_disjoint():
    train, held_out = load_prompts(SHIPPED["default"]), load_prompts(SHIPPED["eval"])
    assert len(train) >= 150 and len(held_out) >= 60
    assert not {p.text.casefold() for p in train} & {p.text.casefold() for p in held_out}
    categories = {p.category for p in train}
    assert {"how-to", "explain", "coding", "advice", "factual", "creative", "refusal-worthy"} <= categories


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_prompt_files_in_every_format(tmp_path, suffix):
    rows = [{"id": "1", "prompt": "Explain tides.", "category": "explain"}, {"id": "2", "prompt": "Hi ✨ مرحبا"}]
    path = write_records(rows, tmp_path / f"p{suffix}")
    items = load_prompts(path)
    assert [i.text for i in items] == ["Explain tides.", "Hi ✨ مرحبا"]
    assert items[0].messages == [{"role": "user", "content": "Explain tides."}]


def test_conversational_preferences_load(tmp_path):
    path = _jsonl(
        tmp_path / "p.jsonl",
        [
            {
                "prompt": [{"role": "user", "content": "2+2?"}],
                "chosen": [{"role": "assistant", "content": "4"}],
                "rejected": [{"role": "assistant", "content": "5"}],
            }
        ],
    )
    assert load_preferences(path) == [
        {"messages": [{"role": "user", "content": "2+2?"}], "chosen": "4", "rejected": "5", "rationale": ""}
    ]


MALFORMED = {
    "bad_json.jsonl": (b'{"prompt": "ok"}\n{"prompt": oops}\n', "line 2: invalid JSON"),
    "control_char.jsonl": (
        b'{"prompt": "a\tb"}\n',
        "line 1: invalid JSON \\(Invalid control character at column 14\\)",
    ),
    "not_object.jsonl": (b'["a", "b"]\n', "line 1: expected a JSON object"),
    "missing_field.jsonl": (b'{"text": "hello"}\n', "line 1: missing field 'prompt'"),
    "wrong_type.jsonl": (b'{"prompt": 42}\n', "field 'prompt' must be text"),
    "empty_string.jsonl": (b'{"prompt": "   "}\n', "field 'prompt' is empty"),
    "empty.jsonl": (b"", "empty"),
    "latin1.jsonl": ('{"prompt": "caf\u00e9"}\n'.encode("latin-1"), "line 1: not valid UTF-8"),
    "huge.jsonl": (json.dumps({"prompt": "x" * 1_000_001}).encode() + b"\n", "limit"),
    "nested.jsonl": (b'{"prompt": "ok"}\n' + b"[" * 100_000 + b"\n", "line 2: invalid JSON \\(nested too deeply\\)"),
    "long_field.csv": (b"prompt\n" + b"x" * 200_001 + b"\n", "line 2: field 'prompt' is 200,001 characters"),
    "wrong_role.jsonl": (b'{"prompt": [{"role": "wizard", "content": "hi"}]}\n', "unknown role"),
    "dup_ids.jsonl": (b'{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', "line 2: duplicate id"),
    "extra_values.csv": (b"prompt\nhello,extra\n", "more values than the header"),
    "header_only.csv": (b"prompt\n", "no rows"),
    "garbage.parquet": (b"PAR1 not really", "not a readable Parquet"),
    "prompts.txt": (b"hello", "unsupported file type"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_prompt_files_give_one_clear_error(tmp_path, workspace, name):
    content, message = MALFORMED[name]
    path = tmp_path / name
    path.write_bytes(content)
    sets = PromptSets(workspace)
    before = sets.names()
    with pytest.raises(UserError, match=message):
        sets.import_file(path, "bad")
    assert sets.names() == before and not list(sets.folder.iterdir())


@pytest.mark.parametrize(
    "row, message",
    [
        ({"prompt": "q", "chosen": "a"}, "missing field 'rejected'"),
        ({"prompt": "q", "chosen": ["a"], "rejected": "b"}, "field 'chosen'"),
        (
            {
                "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "user", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "chosen turn 1 has role 'user'",
        ),
    ],
)
def test_malformed_preference_rows(tmp_path, row, message):
    with pytest.raises(UserError, match=message):
        load_preferences(_jsonl(tmp_path / "p.jsonl", [row]))


def test_prompt_set_import_round_trip(tmp_path, workspace):
    sets = PromptSets(workspace)
    name, count = sets.import_file(_jsonl(tmp_path / "mine.jsonl", [{"prompt": "a"}, {"prompt": "b"}]))
    assert (name, count) == ("mine", 2)
    assert [p.text for p in sets.load("mine")] == ["a", "b"] and "mine" in sets.names()
    with pytest.raises(UserError, match="shipped"):
        sets.import_file(tmp_path / "mine.jsonl", "default")


def test_csv_fields_up_to_the_text_limit_load(tmp_path):
    """csv's own default (131,072 characters a field) would call these valid rows malformed."""
    long = "y" * MAX_FIELD_CHARS
    path = write_records([{"prompt": "q", "chosen": long, "rejected": "short"}], tmp_path / "long.csv")
    assert load_preferences(path)[0]["chosen"] == long
