"""Rankings of K answers: stored once as one ranking, expanded to K(K-1)/2 pairs with one group id, retracted as
a whole, imported from {prompt, ranking} rows, and exported (DPO with the group id, KTO top and bottom)."""

import json

import pytest

from alignstudio.core.errors import UserError
from alignstudio.services.data.importing import import_pairs
from alignstudio.services.data.snapshots import dpo_rows, export_snapshot, kto_rows

MSG = [{"role": "user", "content": "Name a colour."}]
ANSWERS = ["Red.", "Blue, the sky's.", "Green like grass.", "Purple?"]


def _answers(store):
    return store.add_answers(MSG, ANSWERS, models=["m"] * 4, params=[{}] * 4, prompt_set="colours")


def test_a_ranking_of_four_is_stored_once_and_exports_six_pairs_with_one_group_id(store):
    gens = _answers(store)
    ranked = [gens[2], gens[0], gens[3], gens[1]]  # best first
    events_before = store.event_count()
    ranking_id, new = store.add_ranking(ranked, annotator="ann", shown=gens, event_id="k1")
    assert new and ranking_id == "k1"
    # a retry of the same submission (same key): nothing stored twice
    assert store.add_ranking(ranked, annotator="ann", shown=gens, event_id="k1") == ("k1", False)
    assert store.event_count() - events_before == 6
    assert len(store.rankings()) == 1 and store.ranking("k1").gen_ids == ranked
    rows = dpo_rows(store)
    assert len(rows) == 6 and {row["group_id"] for row in rows} == {"k1"}
    text = {g: t for g, t in zip(gens, ANSWERS)}
    expected = {(text[ranked[i]], text[ranked[j]]) for i in range(4) for j in range(i + 1, 4)}
    assert {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows} == expected
    # every pairwise reader sees them as human labels with the shared group id
    labels = store.preference_rows()
    assert {r["group_id"] for r in labels} == {"k1"} and {r["source"] for r in labels} == {"human"}
    assert {r["verdict"] for r in labels} == {"A", "B"}  # A is the answer shown first, not always the better


def test_plain_pairs_keep_their_columns_and_mix_with_ranked_ones(store):
    pair = store.add_pair(MSG, "Red.", "Blue.", model_a="m", model_b="m")
    store.add_preference(pair, "A", annotator="x")
    assert "group_id" not in dpo_rows(store)[0]  # data without rankings: columns as before
    gens = _answers(store)
    store.add_ranking(gens[:3], annotator="x", event_id="r3")
    rows = dpo_rows(store)
    assert len(rows) == 4 and sorted(map(str, (r["group_id"] for r in rows))) == ["None", "r3", "r3", "r3"]


def test_retracting_a_ranking_retracts_its_pairs(store):
    gens = _answers(store)
    store.add_ranking(gens, annotator="ann", event_id="k2")
    assert store.last_ranking("ann").id == "k2"
    store.retract_ranking("k2", annotator="ann")
    assert store.preference_rows() == [] and store.rankings() == [] and store.last_ranking("ann") is None
    with pytest.raises(UserError, match="already retracted"):
        store.retract_ranking("k2", annotator="ann")
    with pytest.raises(UserError, match="no ranking"):
        store.retract_ranking("nope")


def test_bad_rankings_store_nothing(store):
    gens = _answers(store)
    other = store.add_answers([{"role": "user", "content": "Other?"}], ["x", "y"], models=["m"] * 2, params=[{}] * 2)
    before = store.event_count()
    for ranked, message in (
        ([gens[0]], "at least 2"),
        ([gens[0], gens[0]], "at least 2"),
        ([gens[0], other[0]], "same prompt"),
        ([gens[0], "missing"], "does not have"),
    ):
        with pytest.raises(UserError, match=message):
            store.add_ranking(ranked)
    with pytest.raises(UserError, match="exactly the answers shown"):
        store.add_ranking(gens[:2], shown=gens)
    assert store.event_count() == before and store.rankings() == []


def test_kto_takes_the_top_as_desirable_and_the_bottom_as_undesirable(store):
    gens = _answers(store)
    store.add_ranking([gens[1], gens[0], gens[3], gens[2]], annotator="ann")
    rows = kto_rows(store, include_pairs=True)
    assert [(r["completion"][0]["content"], r["label"]) for r in rows] == [(ANSWERS[1], True), (ANSWERS[2], False)]


def test_import_of_ranking_rows_plain_and_conversational(store, workspace, tmp_path):
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "A colour?"},
    ]
    path = tmp_path / "ranked.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(row)
            for row in (
                {"prompt": "Name a colour.", "ranking": ["Red.", "Blue.", "Green.", "Grey."]},
                {"prompt": conversation, "ranking": [[{"role": "assistant", "content": "Teal."}], "Beige."]},
            )
        )
    )
    report = import_pairs(store, path)
    assert report.format == "ranking" and report.pairs == 6 + 1
    rows = dpo_rows(store)
    groups = {r["group_id"] for r in rows}
    assert len(rows) == 7 and len(groups) == 2 and None not in groups
    last = [r for r in rows if r["prompt"] == conversation]
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in last] == [("Teal.", "Beige.")]
    snapshot = export_snapshot(store, workspace, "dpo")
    import datasets

    assert "group_id" in datasets.load_from_disk(str(snapshot.path)).column_names


def test_import_refuses_a_bad_ranking_row_and_stores_nothing(store, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"prompt": "Q", "ranking": ["a", "b"]}) + "\n" + json.dumps({"prompt": "Q", "ranking": ["a", ""]})
    )
    with pytest.raises(UserError, match=r"line 2.*ranking.*answer 2"):
        import_pairs(store, path)
    path.write_text(json.dumps({"prompt": "Q", "ranking": ["only one"]}))
    with pytest.raises(UserError, match="list of 2 to"):
        import_pairs(store, path)
    assert store.event_count() == 0


def test_the_service_stores_a_submitted_ranking_once_and_undo_takes_it_back(store):
    from alignstudio.services.labeling.ranking import RankingService, ShownRanking
    from alignstudio.services.sampling.answers import RankFeeds

    gens = _answers(store)
    service = RankingService(store, RankFeeds(None, None))
    shown = ShownRanking("key-1", MSG[-1]["content"], "colours", gens, ANSWERS)
    with pytest.raises(UserError, match="rank all 4 answers"):
        service.rank(shown, [0, 1, 2], annotator="ann")
    first = service.rank(shown, [3, 1, 0, 2], annotator="ann")
    again = service.rank(shown, [0, 1, 2, 3], annotator="ann")  # a double submit / an API retry
    assert (first.pairs, first.duplicate, again.duplicate) == (6, False, True)
    assert store.ranking("key-1").gen_ids == [gens[3], gens[1], gens[0], gens[2]] and len(store.labels()) == 6
    back = service.undo_last("ann")
    assert back.gen_ids == gens and back.texts == ANSWERS and back.key != "key-1"
    assert store.labels() == [] and service.answers_for("colours") == 2
    service.set_answers("colours", 4)
    assert service.answers_for("colours") == 4
    with pytest.raises(UserError, match="2 to 4"):
        service.set_answers("colours", 5)
