"""The public preference datasets as published: small hand-written files with their column names and shapes
import into conversational pairs with provenance, and a malformed row of each is refused by line, storing nothing."""

import json

import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.formats import write_records
from alignstudio.services.data.importing import import_pairs

U, A, S = "user", "assistant", "system"


def msg(role, content):
    return {"role": role, "content": content}


HH = [
    {
        "chosen": "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in boiling water for 9 minutes.",
        "rejected": "\n\nHuman: How do I boil an egg?\n\nAssistant: Eggs are oval.",
    },
    {
        "chosen": "\n\nHuman: Name a fruit.\n\nAssistant: Apple.\n\nHuman: Another?\n\nAssistant: Pear.",
        "rejected": "\n\nHuman: Name a fruit.\n\nAssistant: Apple.\n\nHuman: Another?\n\nAssistant: No.",
    },
]
UF_BINARIZED = [
    {
        "prompt": "What is 2+2?",
        "prompt_id": "p1",
        "chosen": [msg(U, "What is 2+2?"), msg(A, "4")],
        "rejected": [msg(U, "What is 2+2?"), msg(A, "5")],
        "messages": [msg(U, "What is 2+2?"), msg(A, "4")],
        "score_chosen": 9.0,
        "score_rejected": 2.0,
    },
    {
        "prompt": "Capital of Peru?",
        "prompt_id": "p2",
        "chosen": [msg(U, "Capital of Peru?"), msg(A, "Lima.")],
        "rejected": [msg(U, "Capital of Peru?"), msg(A, "Quito.")],
        "messages": [msg(U, "Capital of Peru?"), msg(A, "Lima.")],
        "score_chosen": 8.5,
        "score_rejected": 3.0,
    },
]


def _completion(model, response, score):
    return {
        "model": model,
        "principle": "helpfulness",
        "custom_system_prompt": "",
        "response": response,
        "annotations": {},
        "critique": "",
        "fine-grained_score": score,
        "overall_score": score,
    }


UF_RAW = [
    {
        "source": "evol_instruct",
        "instruction": "Write a haiku about rain.",
        "models": ["m1", "m2", "m3", "m4"],
        "completions": [
            _completion("m1", "Rain taps the window", 3.0),
            _completion("m2", "Soft rain on the roof", 4.5),
            _completion("m3", "It is raining.", 1.5),
            _completion("m4", "Grey clouds weep", 2.0),
        ],
        "correct_answers": ["None"],
        "incorrect_answers": ["None"],
    },
    {
        "source": "sharegpt",
        "instruction": "Say hi.",
        "models": ["m1", "m2"],  # a tie: skipped
        "completions": [_completion("m1", "Hi!", 5.0), _completion("m2", "Hello!", 5.0)],
        "correct_answers": ["None"],
        "incorrect_answers": ["None"],
    },
]
SHP = [
    {
        "post_id": "abc1",
        "domain": "askscience_train",
        "upvote_ratio": 0.99,
        "history": "Why is the sky blue?",
        "c_root_id_A": "c1",
        "c_root_id_B": "c2",
        "created_at_utc_A": 1,
        "created_at_utc_B": 2,
        "score_A": 40,
        "score_B": 10,
        "human_ref_A": "Rayleigh scattering.",
        "human_ref_B": "Because it is.",
        "labels": 1,
        "seconds_difference": 1.0,
        "score_ratio": 4.0,
    },
    {
        "post_id": "abc2",
        "domain": "askscience_train",
        "upvote_ratio": 0.9,
        "history": "Why do cats purr?",
        "c_root_id_A": "c3",
        "c_root_id_B": "c4",
        "created_at_utc_A": 1,
        "created_at_utc_B": 2,
        "score_A": 5,
        "score_B": 15,
        "human_ref_A": "No idea.",
        "human_ref_B": "To communicate and self-soothe.",
        "labels": 0,
        "seconds_difference": 1.0,
        "score_ratio": 3.0,
    },
]
ORCA = [
    {
        "system": "You are a helpful assistant.",
        "question": "Translate 'cat' to French.",
        "chosen": "Chat.",
        "rejected": "Chien.",
    },
    {"system": "", "question": "Is 7 prime?", "chosen": "Yes.", "rejected": "No."},
]


def _oasst(mid, parent, role, text, rank=None):
    return {
        "message_id": mid,
        "parent_id": parent,
        "user_id": "u",
        "created_date": "2023-02-05",
        "text": text,
        "role": role,
        "lang": "en",
        "review_count": 3,
        "review_result": True,
        "deleted": False,
        "rank": rank,
        "synthetic": False,
        "model_name": None,
        "detoxify": None,
        "message_tree_id": "t1",
        "tree_state": "ready_for_export",
        "emojis": None,
        "labels": None,
    }


OASST = [
    _oasst("m1", None, "prompter", "How do plants eat?"),
    _oasst("m2", "m1", "assistant", "By photosynthesis.", 0),
    _oasst("m3", "m1", "assistant", "They chew.", 2),
    _oasst("m4", "m1", "assistant", "With sunlight, mostly.", 1),
    _oasst("m5", "m2", "prompter", "What is that?"),
    _oasst("m6", "m5", "assistant", "Turning light into sugar.", 0),
    _oasst("m7", "m5", "assistant", "A kind of dance.", 1),
]


def _tree(rows):
    nodes = {
        r["message_id"]: {k: v for k, v in r.items() if k not in ("parent_id", "message_tree_id")} | {"replies": []}
        for r in rows
    }
    for r in rows:
        if r["parent_id"]:
            nodes[r["parent_id"]]["replies"].append(nodes[r["message_id"]])
    return [
        {
            "message_tree_id": "t1",
            "tree_state": "ready_for_export",
            "prompt": nodes[rows[0]["message_id"]],
            "origin": "oasst1",
        }
    ]


def _write(tmp_path, name, rows):
    return write_records(rows, tmp_path / name)


def _imported(store, path, **kw):
    report = import_pairs(store, path, **kw)
    rows = store.preference_rows()
    return report, [(r["messages"], r["text_a"], r["text_b"]) for r in rows], rows


def test_hh_rlhf_transcripts_split_at_the_last_assistant_turn(tmp_path, store):
    report, pairs, rows = _imported(store, _write(tmp_path, "hh.jsonl", HH))
    assert report.format == "hh-rlhf" and report.pairs == 2
    assert pairs[0] == ([msg(U, "How do I boil an egg?")], "Put it in boiling water for 9 minutes.", "Eggs are oval.")
    assert pairs[1] == ([msg(U, "Name a fruit."), msg(A, "Apple."), msg(U, "Another?")], "Pear.", "No.")
    assert rows[1]["params_a"] | rows[1]["params_b"] == {
        "dataset": "Anthropic/hh-rlhf",
        "file": "hh.jsonl",
        "line": 2,
        "id": "2",
    }
    assert {r["source"] for r in rows} == {"import"} and {r["verdict"] for r in rows} == {"A"}


def test_ultrafeedback_binarized_message_lists_from_parquet(tmp_path, store):
    report, pairs, rows = _imported(store, _write(tmp_path, "ufb.parquet", UF_BINARIZED))
    assert report.format == "ultrafeedback-binarized"
    assert pairs == [([msg(U, "What is 2+2?")], "4", "5"), ([msg(U, "Capital of Peru?")], "Lima.", "Quito.")]
    assert rows[0]["params_a"]["score"] == 9.0 and rows[0]["params_b"]["score"] == 2.0
    assert rows[0]["params_a"]["id"] == "p1"
    assert rows[0]["params_a"]["dataset"] == "HuggingFaceH4/ultrafeedback_binarized"


def test_ultrafeedback_raw_best_against_a_seeded_random_other_and_ties_skipped(tmp_path, store):
    report, pairs, rows = _imported(store, _write(tmp_path, "uf.jsonl", UF_RAW))
    assert report.format == "ultrafeedback" and report.pairs == 1 and report.skipped == 1
    ((messages, chosen, rejected),) = pairs
    assert messages == [msg(U, "Write a haiku about rain.")] and chosen == "Soft rain on the roof"
    assert rejected in {"Rain taps the window", "It is raining.", "Grey clouds weep"}
    assert rows[0]["model_a"] == "m2" and rows[0]["params_a"]["score"] == 4.5
    assert rows[0]["params_b"]["score"] < 4.5 and len(rows[0]["params_a"]["id"]) == 64  # sha256 of the prompt
    # the draw is seeded by the prompt: the same pair again, in any file order
    again = import_pairs(store, _write(tmp_path, "uf2.jsonl", UF_RAW[::-1]))
    assert again.pairs == 1 and store.preference_rows()[-1]["text_b"] == rejected


def test_shp_uses_labels_and_keeps_the_score_ratio(tmp_path, store):
    report, pairs, rows = _imported(store, _write(tmp_path, "shp.csv", SHP))
    assert report.format == "shp"
    assert pairs == [
        ([msg(U, "Why is the sky blue?")], "Rayleigh scattering.", "Because it is."),
        ([msg(U, "Why do cats purr?")], "To communicate and self-soothe.", "No idea."),
    ]
    assert rows[1]["params_a"] | {"file": None} == {
        "dataset": "stanfordnlp/SHP",
        "file": None,
        "line": 3,
        "id": "abc2",
        "comment_id": "c4",
        "score": 15.0,
        "score_ratio": 3.0,
        "domain": "askscience_train",
    }


def test_orca_dpo_keeps_the_system_message_in_the_prompt(tmp_path, store):
    report, pairs, _ = _imported(store, _write(tmp_path, "orca.jsonl", ORCA))
    assert report.format == "orca-dpo"
    assert pairs == [
        ([msg(S, "You are a helpful assistant."), msg(U, "Translate 'cat' to French.")], "Chat.", "Chien."),
        ([msg(U, "Is 7 prime?")], "Yes.", "No."),
    ]


EXPECTED_OASST = [
    ([msg(U, "How do plants eat?")], "By photosynthesis.", "With sunlight, mostly."),
    ([msg(U, "How do plants eat?")], "By photosynthesis.", "They chew."),
    (
        [msg(U, "How do plants eat?"), msg(A, "By photosynthesis."), msg(U, "What is that?")],
        "Turning light into sugar.",
        "A kind of dance.",
    ),
]


def test_oasst_message_table_gives_best_ranked_reply_against_each_sibling(tmp_path, store):
    report, pairs, rows = _imported(store, _write(tmp_path, "oasst.parquet", OASST))
    assert report.format == "oasst"
    assert pairs == EXPECTED_OASST
    assert rows[0]["params_a"]["id"] == "m2" and rows[0]["params_b"] | {"file": None} == {
        "dataset": "OpenAssistant/oasst1",
        "file": None,
        "line": 4,
        "id": "m4",
        "parent_id": "m1",
        "rank": 1.0,
        "tree_id": "t1",
        "lang": "en",
    }


def test_oasst_tree_export_gives_the_same_pairs(tmp_path, store):
    report, pairs, _ = _imported(store, _write(tmp_path, "trees.jsonl", _tree(OASST)))
    assert report.format == "oasst-trees" and pairs == EXPECTED_OASST


def test_a_datasets_folder_and_a_named_format(tmp_path, store):
    from datasets import Dataset

    folder = tmp_path / "orca_ds"
    Dataset.from_list(ORCA).save_to_disk(str(folder))
    assert import_pairs(store, folder, fmt="orca-dpo").pairs == 2
    with pytest.raises(UserError, match="hh.jsonl, line 1: missing field 'history'"):
        import_pairs(store, _write(tmp_path, "hh.jsonl", HH), fmt="shp")


def _bad(rows, index, **changes):
    rows = json.loads(json.dumps(rows))
    rows[index].update(changes)
    return rows


MALFORMED = {
    "hh-rlhf": (
        _bad(HH, 1, rejected="\n\nHuman: Name a veg.\n\nAssistant: Leek.\n\nHuman: Another?\n\nAssistant: No."),
        "line 2: fields 'chosen' and 'rejected' differ before the last assistant turn",
    ),
    "hh-rlhf-not-transcript": (_bad(HH, 1, chosen="just some text"), "line 2: field 'chosen' is not a"),
    "ultrafeedback-binarized": (
        _bad(UF_BINARIZED, 1, score_rejected="high"),
        "line 2: field 'score_rejected' must be a number",
    ),
    "ultrafeedback": (
        _bad(UF_RAW, 0, completions=[_completion("m1", "x", 1.0), {"model": "m2", "overall_score": 3}]),
        "line 1: missing field 'completions[1].response'",
    ),
    "shp": (_bad(SHP, 1, labels=2), "line 2: field 'labels' must be 0 or 1"),
    "orca-dpo": (_bad(ORCA, 1, rejected=""), "line 2: field 'rejected' is empty"),
    "oasst": (_bad(OASST, 5, parent_id="m99"), "line 6: field 'parent_id': message 'm99' is not in the file"),
    "oasst-trees": ([{"message_tree_id": "t1", "prompt": "not a tree"}], "line 1: field 'prompt' must be the tree"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_row_is_refused_by_line_and_nothing_is_stored(tmp_path, store, name):
    rows, message = MALFORMED[name]
    path = _write(tmp_path, f"{name}.jsonl", rows)
    with pytest.raises(UserError) as caught:
        import_pairs(store, path)
    assert f"{name}.jsonl, {message}" in str(caught.value)
    assert store.preference_rows() == [] and store.pairs() == []


def test_bad_requests_are_refused(tmp_path, store):
    path = _write(tmp_path, "orca.jsonl", ORCA)
    with pytest.raises(UserError, match="unknown format"):
        import_pairs(store, path, fmt="nope")
    with pytest.raises(UserError, match="not both"):
        import_pairs(store, path, hub="Intel/orca_dpo_pairs")
    assert import_pairs(store, path, limit=1).pairs == 1


def test_oasst_from_csv_reads_empty_ranks_and_text_booleans(tmp_path, store):
    rows = [r | {"deleted": False} for r in OASST] + [_oasst("m8", "m1", "assistant", "Gone.", 3) | {"deleted": True}]
    report, pairs, _ = _imported(store, _write(tmp_path, "oasst.csv", rows))
    assert report.format == "oasst" and pairs == EXPECTED_OASST  # the deleted reply gives no pair
