"""The preference-data validator: each check flags a dataset that has its problem, clean data passes."""

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from alignstudio.core.errors import UserError
from alignstudio.services.data.validation import (
    DataShapeError,
    Finding,
    Thresholds,
    cohen_kappa,
    detect_kind,
    normalize_prompt,
    suggest_kto_weights,
    validate,
)

TOPICS = [
    "rivers",
    "volcanoes",
    "bread",
    "chess",
    "bicycles",
    "tides",
    "owls",
    "glass",
    "coffee",
    "maps",
    "bridges",
    "honey",
    "comets",
    "violins",
    "deserts",
    "paper",
    "magnets",
    "coral",
    "tea",
    "clocks",
    "snow",
    "lighthouses",
    "cheese",
    "kites",
    "caves",
    "silk",
    "rainbows",
    "trains",
    "mushrooms",
    "ink",
]


def clean_dpo(n: int = 30) -> list[dict]:
    """Distinct prompts; chosen and rejected of similar length, chosen longer in about half of the pairs."""
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)] + ("" if i < len(TOPICS) else f" {i}")
        good = f"Here is a careful explanation of {topic}: it covers how {topic} work and why they matter today."
        bad = f"Not sure about {topic}, maybe look it up somewhere else later, it is hard."
        if i % 2:
            good += " Short."
        else:
            bad += " It really is quite hard to say much more."
        rows.append({"prompt": f"Tell me about {topic}.", "chosen": good, "rejected": bad})
    return rows


def as_conversation(rows: list[dict]) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in rows
    ]


def clean_kto(n: int = 30) -> list[dict]:
    rows = []
    for r in clean_dpo(n // 2):
        rows.append({"prompt": r["prompt"], "completion": r["chosen"], "label": True})
        rows.append({"prompt": r["prompt"], "completion": r["rejected"], "label": False})
    return rows


def checks(report, severity=None):
    return {f.check for f in report.findings if severity is None or f.severity == severity}


def finding(report, check):
    found = report.by_check(check)
    assert found, f"{check} not in {[f.check for f in report.findings]}"
    return found[0]


@pytest.fixture(scope="module")
def word_tokenizer():
    """A real fast tokenizer where every whitespace-separated word is one token, with a chat template."""
    model = models.WordLevel({"[UNK]": 0, "<eos>": 1}, unk_token="[UNK]")
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", unk_token="[UNK]")
    hf.chat_template = (
        "{% for m in messages %}{% if m['content'] == 'BOOM' %}{{ raise_exception('template says no') }}{% endif %}"
        "<|{{ m['role'] }}|> {{ m['content'] }} <eos> {% endfor %}"
        "{% if add_generation_prompt %}<|assistant|> {% endif %}"
    )
    return hf


# --- clean data --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [clean_dpo, lambda: as_conversation(clean_dpo()), clean_kto])
def test_clean_data_has_no_errors_or_warnings(make):
    report = validate(make())
    assert not report.has_errors and not report.has_warnings, report.to_text()
    assert "No problems found" in report.to_text()


def test_clean_data_with_tokenizer_and_labels_passes(word_tokenizer):
    rows = clean_dpo()
    labels = [
        {"pair_id": f"p{i}", "annotator": ann, "source": "human", "verdict": "A", "left": "A" if i % 2 else "B"}
        for i in range(30)
        for ann in ("ann1", "ann2")
    ]
    report = validate(rows, tokenizer=word_tokenizer, max_length=200, labels=labels)
    assert not report.has_errors and not report.has_warnings, report.to_text()


def test_kind_is_detected_and_forms_recorded():
    assert detect_kind(clean_dpo()) == "dpo"
    assert detect_kind(clean_kto()) == "kto"
    report = validate(as_conversation(clean_dpo()))
    assert (report.kind, report.n_rows, report.stats["form"]) == ("dpo", 30, "conversational")
    assert validate(clean_kto()).stats["form"] == "plain"


def test_unknown_columns_raise_a_clear_value_error():
    with pytest.raises(ValueError, match="DPO needs prompt, chosen, rejected"):
        validate([{"text": "hello"}])
    with pytest.raises(DataShapeError, match="need a 'prompt' column"):
        validate([{"chosen": "a", "rejected": "b"}])
    with pytest.raises(UserError):
        validate(clean_dpo(), kind="ppo")


def test_no_rows_is_an_error():
    report = validate([])
    assert report.has_errors and checks(report) == {"no_rows"}


# --- row checks --------------------------------------------------------------------------------------------


def test_identical_chosen_and_rejected_is_an_error():
    rows = clean_dpo()
    rows[4]["rejected"] = rows[4]["chosen"] + "  "
    f = finding(validate(rows), "identical_pairs")
    assert (f.severity, f.count, f.examples) == ("error", 1, [4])


def test_empty_response_is_an_error_and_short_one_a_warning():
    rows = clean_dpo()
    rows[2]["chosen"] = "   "
    rows[7]["rejected"] = "Dunno."
    report = validate(rows)
    assert (finding(report, "empty_responses").severity, finding(report, "empty_responses").examples) == ("error", [2])
    short = finding(report, "short_responses")
    assert (short.severity, short.examples) == ("warning", [7])


def test_malformed_conversations_are_errors_with_the_rows_named():
    rows = as_conversation(clean_dpo())
    rows[3]["chosen"] = [{"role": "user", "content": "wrong side"}]
    rows[5]["prompt"].append({"role": "assistant", "content": "prompt ends on the model"})
    rows[9]["rejected"] = "plain text in a conversational dataset"
    f = finding(validate(rows), "malformed")
    assert f.severity == "error" and f.count == 3 and f.examples == [3, 5, 9]
    assert any("row 3: chosen turn 1 has role 'user'" in d for d in f.details)


def test_conversational_rows_from_parquet_style_arrays_are_read():
    import numpy as np

    rows = [{k: np.array(v, dtype=object) for k, v in r.items()} for r in as_conversation(clean_dpo())]
    report = validate(rows)
    assert report.stats["form"] == "conversational" and not report.has_errors and not report.has_warnings
    rows[2]["rejected"] = rows[2]["chosen"]
    assert finding(validate(rows), "identical_pairs").examples == [2]


def test_plain_row_in_a_conversational_dataset_is_malformed():
    rows = as_conversation(clean_dpo())
    rows[6] = clean_dpo()[6]
    f = finding(validate(rows), "malformed")
    assert f.examples == [6] and "dataset is conversational" in f.details[0]


def test_nothing_to_train_when_every_row_is_broken():
    rows = [
        {"prompt": f"Question {t}?", "chosen": f"Same answer about {t}.", "rejected": f"Same answer about {t}."}
        for t in TOPICS[:5]
    ]
    report = validate(rows)
    assert {"identical_pairs", "nothing_to_train"} <= checks(report, "error")
    assert report.stats["usable_rows"] == 0


def test_length_bias_by_ratio_is_a_warning():
    rows = clean_dpo()
    for r in rows:
        r["chosen"] = " ".join([r["chosen"]] * 3)
    f = finding(validate(rows), "length_bias")
    assert f.severity == "warning" and "longer is better" in f.message


def test_length_bias_by_chosen_longer_fraction_is_a_warning():
    rows = clean_dpo()
    for r in rows:  # a little longer every time: ratio stays under 1.5, the fraction is 100%
        r["chosen"] = r["rejected"].replace("Not sure", "Honestly not sure at all")
    report = validate(rows)
    assert report.stats["length_ratio"] < 1.5
    f = finding(report, "length_bias")
    assert f.severity == "warning" and "100%" in f.message


def test_few_rows_do_not_trigger_the_fraction_rule():
    rows = clean_dpo(8)
    for r in rows:
        r["chosen"] = r["rejected"] + " extra"
    assert "length_bias" not in checks(validate(rows))


def test_near_identical_pairs_are_a_weak_signal_warning():
    rows = clean_dpo()
    for r in rows[:10]:
        r["rejected"] = r["chosen"].replace("careful", "careless")
    report = validate(rows)
    f = finding(report, "weak_signal")
    assert f.severity == "warning" and f.count == 10 and f.examples == [0, 1, 2, 3, 4]
    assert report.stats["very_similar_fraction"] == pytest.approx(1 / 3, abs=1e-3)
    assert len(report.stats["similarity"]) == 30


def test_duplicate_rows_and_prompts_are_warnings():
    rows = clean_dpo()
    rows.append(dict(rows[0]))  # exact duplicate
    rows.append({**rows[1], "chosen": "A different but fine answer about the same topic here."})
    report = validate(rows)
    dup_rows, dup_prompts = finding(report, "duplicate_rows"), finding(report, "duplicate_prompts")
    assert (dup_rows.severity, dup_rows.examples) == ("warning", [30])
    assert (dup_prompts.severity, dup_prompts.examples) == ("warning", [31])


def test_near_duplicate_prompts_are_found_by_normalized_text():
    assert normalize_prompt("  What's   AI?? ") == normalize_prompt("whats ai")
    rows = clean_dpo()
    rows.append({**rows[0], "prompt": "tell me   about RIVERS!"})
    rows[-1]["chosen"] += " More."
    f = finding(validate(rows), "near_duplicate_prompts")
    assert (f.severity, f.count, f.examples) == ("warning", 1, [30])


# --- KTO ---------------------------------------------------------------------------------------------------


def test_kto_weights_land_in_trls_recommended_range():
    assert suggest_kto_weights(100, 100) == (1.0, 1.0)
    assert suggest_kto_weights(120, 100) == (1.0, 1.0)  # ratio 1.2 already fits [1, 4/3]
    assert suggest_kto_weights(100, 300) == (3.5, 1.0)
    assert suggest_kto_weights(300, 100) == (1.0, 2.57)
    for n_des in range(1, 400, 7):
        for n_und in range(1, 400, 11):
            w_des, w_und = suggest_kto_weights(n_des, n_und)
            assert 1.0 <= (w_des * n_des) / (w_und * n_und) <= 4 / 3 + 1e-9, (n_des, n_und)


def test_kto_imbalance_is_a_warning_with_weights_in_stats():
    rows = clean_kto()
    rows = [r for i, r in enumerate(rows) if r["label"] or i % 6 == 1]  # 15 desirable, 5 undesirable
    report = validate(rows)
    s = report.stats
    assert (s["desirable_count"], s["undesirable_count"]) == (15, 5)
    assert (s["suggested_desirable_weight"], s["suggested_undesirable_weight"]) == (1.0, 2.57)
    assert 1.0 <= s["weighted_ratio"] <= 4 / 3
    f = finding(report, "label_imbalance")
    assert f.severity == "warning" and "undesirable_weight=2.57" in f.message


def test_kto_single_class_and_bad_labels():
    rows = [r for r in clean_kto() if r["label"]]
    assert "no undesirable examples" in finding(validate(rows), "label_imbalance").message
    rows = clean_kto()
    rows[3]["label"] = "yes"
    f = finding(validate(rows), "malformed")
    assert f.examples == [3] and "must be true or false" in f.details[0]


def test_kto_conflicting_labels_and_shared_prompts():
    rows = clean_kto()
    rows.append({**rows[0], "label": False})
    report = validate(rows)
    assert finding(report, "conflicting_labels").severity == "warning"
    assert finding(report, "duplicate_prompts").severity == "info"  # KTO rows share prompts by design


def test_kto_length_bias():
    rows = clean_kto()
    for r in rows:
        if r["label"]:
            r["completion"] = " ".join([r["completion"]] * 3)
    assert finding(validate(rows), "length_bias").severity == "warning"


# --- tokens and truncation ---------------------------------------------------------------------------------


def test_truncation_plain_counts_prompt_plus_longest_response(word_tokenizer):
    rows = clean_dpo()
    rows[5]["rejected"] = " ".join(["word"] * 60)
    rows[8]["prompt"] = " ".join(["context"] * 50)
    report = validate(rows, tokenizer=word_tokenizer, max_length=45)
    s = report.stats
    # plain form: TRL tokenizes prompt + response + EOS as one string, so "tides." and the first "word"
    # merge into one token here: 4 + 60 - 1 + 1
    assert s["sequence_tokens"][5] == 64 and s["prompt_tokens"][5] == 4
    assert s["rejected_tokens"][5] == 60 and s["token_length_method"] == "plain concatenation"
    truncation, dropped = finding(report, "truncation"), finding(report, "prompt_too_long")
    assert (truncation.severity, truncation.examples) == ("warning", [5])
    assert (dropped.severity, dropped.examples) == ("warning", [8])


def test_truncation_conversational_uses_the_chat_template(word_tokenizer):
    rows = as_conversation(clean_dpo())
    rows[2]["chosen"][0]["content"] = " ".join(["word"] * 40)
    report = validate(rows, tokenizer=word_tokenizer, max_length=50)
    # "<|user|> 4 words <eos> <|assistant|> 40 words <eos>" = 1 + 4 + 1 + 1 + 40 + 1
    assert report.stats["sequence_tokens"][2] == 48
    assert report.stats["token_length_method"] == "chat template"
    assert "truncation" not in checks(report)
    f = finding(validate(rows, tokenizer=word_tokenizer, max_length=40), "truncation")
    assert f.examples == [2]


def test_chat_template_failures_are_errors_on_their_rows(word_tokenizer):
    rows = as_conversation(clean_dpo())
    rows[4]["rejected"][0]["content"] = "BOOM"
    rows[7]["chosen"] = rows[7]["rejected"]  # identical: skipped for tokens, so its token stats are None
    report = validate(rows, tokenizer=word_tokenizer, max_length=100)
    f = finding(report, "chat_template")
    assert (f.severity, f.examples) == ("error", [4]) and "template says no" in f.details[0]
    assert len(report.stats["sequence_tokens"]) == 30 and report.stats["sequence_tokens"][7] is None
    assert report.stats["usable_rows"] == 28


def test_default_max_length_and_missing_tokenizer(word_tokenizer):
    report = validate(clean_dpo(), tokenizer=word_tokenizer)
    assert (report.stats["max_length"], report.stats["max_length_source"]) == (1024, "TRL default")
    f = finding(validate(clean_dpo(), max_length=10), "truncation")
    assert f.severity == "info" and "without a tokenizer" in f.message


# --- labels ------------------------------------------------------------------------------------------------


def human(pid, annotator, verdict, left="A", source="human"):
    return {"pair_id": pid, "annotator": annotator, "source": source, "verdict": verdict, "left": left}


def test_cohen_kappa_matches_a_hand_computed_case():
    a = list("AAAAABBBBB")
    b = list("AAAABBBBAA")
    # p_o = 7/10; p_e = (5*6 + 5*4) / 100 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(["A"] * 4, ["A"] * 4) is None  # one category only: undefined
    assert cohen_kappa([], []) is None


def test_position_bias_is_a_warning():
    labels = [human(f"p{i}", "ann", "A" if i < 25 else "B", left="A") for i in range(30)]
    report = validate(clean_dpo(), labels=labels)
    f = finding(report, "position_bias")
    assert f.severity == "warning" and "83%" in f.message
    pb = report.stats["position_bias"]["human"]
    assert (pb["decisive"], pb["left_won"]) == (30, 25) and pb["p_value"] < 0.05


def test_a_kto_report_has_no_pairwise_position_statistic():
    labels = [human(f"p{i}", "ann", "A" if i < 25 else "B", left="A") for i in range(30)]
    rows = [
        {"prompt": f"Tell me about {t}.", "completion": f"{t} are fine.", "label": i % 2 == 0}
        for i, t in enumerate(TOPICS)
    ]
    report = validate(rows, "kto", labels=labels)
    assert "position_bias" not in report.stats and "position_bias" not in checks(report)
    assert "position" not in report.to_text() and "annotator_agreement" in report.stats
    assert "position_bias" in validate(clean_dpo(), labels=labels).stats  # DPO keeps it


def test_position_bias_needs_enough_decisive_labels_and_ignores_ties():
    few = [human(f"p{i}", "ann", "A", left="A") for i in range(15)]
    ties = [human(f"t{i}", "ann", "tie", left="A") for i in range(30)]
    report = validate(clean_dpo(), labels=few + ties)
    assert "position_bias" not in checks(report)
    assert report.stats["position_bias"]["human"]["decisive"] == 15


def test_low_annotator_agreement_is_a_warning_with_kappa():
    rows = [{**r, "pair_id": f"p{i}"} for i, r in enumerate(clean_dpo())]
    first = list("ABABABABABAB")
    second = list("BAABBABABABA")  # agreement 2/12; both use A and B 6 times: p_e = 0.5, kappa = -2/3
    labels = [human(f"p{i}", "ann1", v, left="AB"[i % 2]) for i, v in enumerate(first)]
    labels += [human(f"p{i}", "ann2", v, left="AB"[i % 2]) for i, v in enumerate(second)]
    report = validate(rows, labels=labels)
    agreement = report.stats["annotator_agreement"]
    assert agreement["comparisons"] == 12 and agreement["percent_agreement"] == pytest.approx(2 / 12, abs=1e-4)
    assert agreement["kappa"] == pytest.approx(-2 / 3, abs=1e-4)
    f = finding(report, "low_annotator_agreement")
    assert f.severity == "warning" and f.count == 10
    assert f.pair_ids[0] == "p0" and f.examples[0] == 0  # pair ids map back to rows


def test_good_annotator_agreement_passes_and_relabels_replace_earlier_votes():
    labels = []
    for i in range(12):
        verdict = "AB"[i % 2]
        labels += [human(f"p{i}", "ann1", "B" if verdict == "A" else "A"), human(f"p{i}", "ann1", verdict)]
        labels.append(human(f"p{i}", "ann2", verdict, left="B"))
    report = validate(clean_dpo(), labels=labels)
    assert report.stats["annotator_agreement"]["percent_agreement"] == 1.0
    assert "low_annotator_agreement" not in checks(report)


def test_judge_human_agreement_per_judge():
    labels = []
    for i in range(12):
        truth = "AB"[i % 2]
        labels.append(human(f"p{i}", "ann1", truth, left="AB"[i % 3 % 2]))
        labels.append(human(f"p{i}", "good", truth, source="judge:good"))
        wrong = "B" if truth == "A" else "A"
        labels.append(human(f"p{i}", "bad", wrong, source="judge:bad"))
    labels.append(human("p0", "good", "B", left="B", source="judge:good"))  # swapped order disagrees: a tie
    report = validate(clean_dpo(), labels=labels)
    judges = report.stats["judge_agreement"]
    assert judges["judge:bad"]["agreement"] == 0.0
    assert judges["judge:good"]["agreement"] == pytest.approx(11 / 12, abs=1e-4)
    flagged = report.by_check("low_judge_agreement")
    assert len(flagged) == 1 and "judge:bad" in flagged[0].message and flagged[0].severity == "warning"


def test_malformed_labels_are_reported_and_skipped():
    labels = [human("p1", "ann", "C"), human("p2", "ann", "A", left="left"), human("p3", "ann", "A", source="crowd")]
    f = finding(validate(clean_dpo(), labels=labels), "malformed_labels")
    assert f.severity == "warning" and f.count == 3 and "verdict 'C'" in f.details[0]


# --- report ------------------------------------------------------------------------------------------------


def test_report_is_json_able_and_readable(word_tokenizer):
    rows = clean_dpo()
    rows[1]["rejected"] = rows[1]["chosen"]
    labels = [human(f"p{i}", "ann", "A") for i in range(25)]
    report = validate(rows, tokenizer=word_tokenizer, labels=labels)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["has_errors"] and data["counts"]["error"] == 1 and data["kind"] == "dpo"
    assert len(data["stats"]["chosen_words"]) == 30
    small = report.to_dict(include_values=False)
    assert "chosen_words" not in small["stats"] and "length_ratio" in small["stats"]
    text = report.to_text()
    assert "ERROR   identical_pairs (1)" in text and "fix the errors before training" in text
    assert report.findings[0].severity == "error"  # errors first


def test_finding_validates_severity_and_caps_examples():
    with pytest.raises(ValueError):
        Finding("x", "fatal", "m")
    assert Finding("x", "info", "m", 9, list(range(9))).examples == [0, 1, 2, 3, 4]


def test_thresholds_are_adjustable():
    rows = clean_dpo()
    for r in rows[:3]:
        r["rejected"] = r["chosen"].replace("careful", "careless")
    assert "weak_signal" not in checks(validate(rows))
    assert "weak_signal" in checks(validate(rows, thresholds=Thresholds(max_very_similar_fraction=0.05)))


def test_same_annotator_contradicting_themselves_is_flagged_with_the_pairs_named():
    labels = [
        human("p1", "ann", "A"),
        human("p1", "ann", "B", left="B"),  # ann: A, later B on p1
        human("p2", "ann", "A"),
        human("p2", "ann", "A"),  # the same verdict twice: fine
        human("p1", "bob", "B"),  # another person disagreeing: not this
        human("p3", "ann", "tie"),
        human("p3", "ann", "both_bad"),
    ]
    report = validate(clean_dpo(), labels=labels)
    f = finding(report, "self_contradiction")
    assert f.severity == "warning" and f.count == 2
    assert f.pair_ids == ["p1", "p3"]
    assert f.details == ["pair p1: ann said A then B", "pair p3: ann said tie then both_bad"]
    assert report.stats["self_contradictions"][0] == {"pair_id": "p1", "annotator": "ann", "verdicts": ["A", "B"]}
    assert "self_contradiction" not in checks(validate(clean_dpo(), labels=labels[2:5]))


def test_self_contradiction_found_in_the_store_and_gone_after_a_retract(store):
    from alignstudio.services.data.checks import validate_store

    msg = [{"role": "user", "content": "Best way to learn Python?"}]
    pair = store.add_pair(msg, "Build small projects.", "Read the manual.", model_a="m", model_b="m")
    first = store.add_preference(pair, "A", annotator="ann", shown_left="A")
    store.add_preference(pair, "B", annotator="ann", shown_left="B")
    f = finding(validate_store(store, "dpo"), "self_contradiction")
    assert f.pair_ids == [pair] and f.details == [f"pair {pair}: ann said A then B"]
    store.retract(first, annotator="ann")
    assert "self_contradiction" not in checks(validate_store(store, "dpo"))
