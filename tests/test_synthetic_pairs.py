"""Synthetic pairs: one model under two system prompts, each generation recording its own; `--chosen` labels them
with source synthetic; the Data tab filters them and the export leaves them out. Plus the import CLI's doors."""

import json
from types import SimpleNamespace

import pytest
from servers import cli

from alignstudio.core.errors import UserError
from alignstudio.core.models import load_causal_lm, load_tokenizer
from alignstudio.core.store import Store
from alignstudio.services.data.browser import label_table
from alignstudio.services.data.snapshots import dpo_rows
from alignstudio.services.labeling import LabelingService
from alignstudio.services.sampling.prompt_sets import PromptSets
from alignstudio.services.sampling.sampler import Generator, SampledPair, sample_pair, with_system
from alignstudio.services.sampling.settings import SamplingSettings
from alignstudio.services.sampling.synthetic import check_chosen, store_labeled

MSG = [{"role": "user", "content": "Give me one tip for better sleep."}]
HELPFUL, VAGUE = "Answer helpfully and concretely.", "Answer vaguely and avoid specifics."
SYNTHETIC = SamplingSettings(max_new_tokens=12, seed=3, system_a=HELPFUL, system_b=VAGUE)


@pytest.fixture(scope="module")
def generator(tiny_model_dir):
    return Generator("tiny", load_causal_lm(tiny_model_dir), load_tokenizer(tiny_model_dir))


def test_each_side_answers_under_its_own_system_prompt_and_records_it(generator):
    pair = sample_pair(MSG, SYNTHETIC, generator)
    assert pair.params_a["system_prompt"] == HELPFUL and pair.params_b["system_prompt"] == VAGUE
    assert pair.messages == MSG and pair.origin == "synthetic"  # the stored prompt is the user's, without either
    plain = sample_pair(MSG, SamplingSettings(max_new_tokens=12, seed=3), generator)
    assert "system_prompt" not in plain.params_a and plain.origin == "sampler"
    assert pair.text_a != plain.text_a  # same seed, different prompt: the system prompt reached the model


def test_a_side_system_prompt_replaces_the_prompts_own():
    own = [{"role": "system", "content": "Be terse."}, *MSG]
    assert with_system(own, HELPFUL) == [{"role": "system", "content": HELPFUL}, *MSG]
    assert with_system(own, "") == own
    with pytest.raises(UserError, match="the same"):
        SamplingSettings(system_a="x", system_b="x")
    with pytest.raises(UserError, match="both --system-a and --system-b"):
        check_chosen(SamplingSettings(system_a="x"), "a")


def test_label_tab_pairs_keep_their_system_prompts_and_the_data_tab_filters_them(store, generator):
    labeling = LabelingService(store, feeds=None)
    shown = labeling.pair_for_prompt("Give me one tip for better sleep.", SYNTHETIC, generator)
    labeling.label(shown, "left", annotator="ann")
    store_labeled(store, [sample_pair(MSG, SYNTHETIC, generator)], "a")
    store.import_preferences([{"messages": MSG, "chosen": "Keep a schedule.", "rejected": "Sleep."}])
    (row,) = [r for r in store.preference_rows() if r["source"] == "human"]
    assert row["origin"] == "synthetic"
    assert {row["params_a"]["system_prompt"], row["params_b"]["system_prompt"]} == {HELPFUL, VAGUE}
    assert sorted(label_table(store, origin="synthetic")["source"]) == ["human", "synthetic"]
    assert list(label_table(store, source="synthetic")["origin"]) == ["synthetic"]
    assert list(label_table(store, origin="import")["source"]) == ["import"]


def test_ui_sampling_controls_carry_the_two_system_prompts():
    from alignstudio.ui.common import feed_config

    cfg = feed_config("pair", "default", "m", "(same as A)", 0.7, 1.0, 0.95, 16, None, f" {HELPFUL} ", VAGUE)
    assert (cfg.settings.system_a, cfg.settings.system_b) == (HELPFUL, VAGUE)
    assert feed_config("single", "default", "m", 0.7, 0.95, 16, None).settings.system_a == ""


def test_data_tab_imports_a_published_format_filters_by_origin_and_exports_without_synthetic(
    workspace, store, tmp_path
):
    from alignstudio.services.data.service import DataService
    from alignstudio.ui import data

    services = SimpleNamespace(data=DataService(store, workspace, PromptSets(workspace)))
    orca = tmp_path / "orca.jsonl"
    orca.write_text(
        json.dumps({"system": "Be kind.", "question": "Is 7 prime?", "chosen": "Yes.", "rejected": "No."}) + "\n"
    )
    assert (
        data.do_import(services, str(orca), "preference pairs", "", "auto")
        == "Imported 1 preference pairs as orca-dpo."
    )
    synthetic = SampledPair(
        MSG,
        "Keep a fixed bedtime.",
        "Sleep is good.",
        "tiny",
        "tiny",
        {"system_prompt": HELPFUL},
        {"system_prompt": VAGUE},
        0.2,
        1,
    )
    store_labeled(store, [synthetic], "a")
    filtered = data.load_table(services, "all", "", "", "", "", "", "synthetic", True)  # stored form
    assert list(filtered["response_a"]) == ["Keep a fixed bedtime."]
    files, _, note = data.do_export(services, "dpo", ["jsonl"], False, True)
    rows = [json.loads(line) for line in open(files[0])]
    assert [r["chosen"][0]["content"] for r in rows] == ["Yes."] and "1 rows" in note
    assert len(data.do_export(services, "dpo", ["jsonl"], False, False)[0]) == 1 and len(dpo_rows(store)) == 2


def test_cli_chosen_stores_labeled_synthetic_pairs_and_export_can_leave_them_out(tmp_path, tiny_model_dir):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("Name a fruit.", "How do tides work?")))
    ws, out = tmp_path / "ws", tmp_path / "synth.jsonl"
    result = cli(
        "sample",
        "--prompts",
        str(prompts),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(out),
        "--system-a",
        HELPFUL,
        "--system-b",
        VAGUE,
        "--chosen",
        "b",
        "--max-new-tokens",
        "10",
        "--seed",
        "2",
        workspace=ws,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all(line["params_a"]["system_prompt"] == HELPFUL and line["chosen"] == "b" for line in lines)
    store = Store(ws / "store.sqlite")
    rows = store.preference_rows()
    assert len(rows) == len(lines) and {(r["source"], r["origin"], r["verdict"]) for r in rows} == {
        ("synthetic", "synthetic", "A")
    }
    assert rows[0]["text_a"] == lines[0]["response_b"]  # the chosen side (b) is stored as A
    assert rows[0]["params_a"]["system_prompt"] == VAGUE and rows[0]["params_a"]["side"] == "b"
    store.import_preferences([{"messages": MSG, "chosen": "Keep a schedule.", "rejected": "Sleep."}])
    assert len(dpo_rows(store)) == len(lines) + 1
    kept = tmp_path / "kept.jsonl"
    assert cli("export", "--exclude-source", "synthetic", "--out", str(kept), workspace=ws).returncode == 0
    assert [json.loads(line)["chosen"][0]["content"] for line in kept.read_text().splitlines()] == ["Keep a schedule."]
    refused = cli(
        "sample",
        "--prompts",
        str(prompts),
        "--model",
        str(tiny_model_dir),
        "--out",
        str(tmp_path / "x.jsonl"),
        "--chosen",
        "a",
        workspace=ws,
    )
    assert refused.returncode == 2 and "needs both --system-a and --system-b" in refused.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_import_names_the_format_and_the_hub_fails_in_one_line_offline(tmp_path):
    hh = tmp_path / "hh.jsonl"
    hh.write_text(
        json.dumps(
            {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."}
        )
        + "\n"
    )
    result = cli("import", str(hh), workspace=tmp_path / "ws")
    assert result.returncode == 0 and "imported 1 preference pairs as hh-rlhf" in result.stdout
    offline = cli("import", "--hub", "Anthropic/hh-rlhf", "--split", "train", "--limit", "5", workspace=tmp_path / "ws")
    assert offline.returncode == 2 and offline.stderr.count("\n") == 1
    assert "cannot load Anthropic/hh-rlhf (split train) from the Hugging Face Hub" in offline.stderr
