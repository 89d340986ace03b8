import datasets
import pytest

from alignstudio.core.errors import UserError
from alignstudio.services.data.snapshots import dpo_rows, export_snapshot, kto_rows

MSG = [{"role": "user", "content": "Capital of France?"}]


def _pair(store, a="Paris.", b="Lyon."):
    return store.add_pair(MSG, a, b, model_a="m", model_b="m")


def test_dpo_rows_by_majority_ties_and_both_bad_left_out(store):
    p1, p2, p3, p4 = (_pair(store) for _ in range(4))
    store.add_preference(p1, "A", annotator="x")
    store.add_preference(p1, "A", annotator="y")
    store.add_preference(p1, "B", annotator="z")  # majority still A
    store.add_preference(p2, "tie")
    store.add_preference(p3, "both_bad")
    store.add_preference(p4, "A", annotator="x")
    store.add_preference(p4, "B", annotator="y")  # contested: left out
    rows = dpo_rows(store)
    assert rows == [
        {
            "prompt": MSG,
            "chosen": [{"role": "assistant", "content": "Paris."}],
            "rejected": [{"role": "assistant", "content": "Lyon."}],
            "strength": None,  # a plain "better"
        }
    ]


def test_edited_answer_is_exported_as_chosen(store):
    pair = _pair(store)
    store.add_preference(pair, "A", edited_text="Paris is the capital of France.")
    [row] = dpo_rows(store)
    assert row["chosen"][0]["content"] == "Paris is the capital of France."
    assert row["rejected"][0]["content"] == "Lyon."


def test_retracted_labels_are_not_exported(store):
    pair = _pair(store)
    store.retract(store.add_preference(pair, "A"))
    with pytest.raises(UserError, match="nothing to export"):
        dpo_rows(store) or export_snapshot(store, None, "dpo")


def test_source_filter(store):
    store.add_preference(_pair(store), "A", source="judge:rules")
    store.add_preference(_pair(store, "x", "y"), "B", source="human")
    assert len(dpo_rows(store, ["human"])) == 1 and len(dpo_rows(store, ["judge"])) == 1
    assert len(dpo_rows(store)) == 2


def test_snapshot_is_a_datasets_folder_with_stable_fingerprint(store, workspace, tmp_path):
    store.add_preference(_pair(store), "B")
    first = export_snapshot(store, workspace, "dpo", out=[str(tmp_path / "d.jsonl"), str(tmp_path / "d.parquet")])
    second = export_snapshot(store, workspace, "dpo")
    assert first.fingerprint == second.fingerprint and first.rows == 1
    data = datasets.load_from_disk(str(first.path))
    assert data[0]["chosen"] == [{"role": "assistant", "content": "Lyon."}]
    assert (tmp_path / "d.jsonl").exists() and (tmp_path / "d.parquet").exists()
    assert [s["fingerprint"] for s in store.snapshots()] == [first.fingerprint] * 2
    assert not list(workspace.snapshots_dir.glob(".*partial"))


def test_a_wrong_output_type_writes_no_snapshot(store, workspace, tmp_path):
    store.add_preference(_pair(store), "B")
    with pytest.raises(UserError, match=r"d.txt: unsupported output type .txt"):
        export_snapshot(store, workspace, "dpo", out=[str(tmp_path / "d.jsonl"), str(tmp_path / "d.txt")])
    assert store.snapshots() == [] and not list(tmp_path.glob("d.*"))
    assert not workspace.snapshots_dir.exists() or not list(workspace.snapshots_dir.iterdir())


def test_kto_rows_from_feedback_and_unpaired_preferences(store):
    gen = store.add_generation(MSG, "Paris.", model="m")
    store.add_feedback(gen, "up", annotator="x")
    bad = store.add_generation(MSG, "Berlin.", model="m")
    store.add_feedback(bad, "down", annotator="x")
    store.add_preference(_pair(store), "A")
    assert [r["label"] for r in kto_rows(store)] == [True, False]
    rows = kto_rows(store, include_pairs=True)
    assert len(rows) == 4 and sorted(r["label"] for r in rows) == [False, False, True, True]
    assert {"prompt", "completion", "label"} <= set(rows[-1])


def test_the_export_says_how_many_ties_both_bad_and_contested_pairs_were_left_out(store, workspace):
    p1, p2, p3, p4 = (_pair(store) for _ in range(4))
    store.add_preference(p1, "A", annotator="x")
    store.add_preference(p2, "tie", annotator="x")
    store.add_preference(p2, "tie", annotator="y")
    store.add_preference(p3, "both_bad", annotator="x")
    store.add_preference(p4, "A", annotator="x")
    store.add_preference(p4, "B", annotator="y")
    snap = export_snapshot(store, workspace, "dpo")
    assert snap.rows == 1
    assert snap.left_out == {"tie labels": 2, "both-bad labels": 1, "contested pairs (as many votes for A as for B)": 1}
    assert snap.left_out_line() == (
        "Left out: 2 tie labels, 1 both-bad labels, 1 contested pairs (as many votes for A as for B)."
    )
    assert store.snapshots()[-1]["params"]["left_out"]["tie labels"] == 2


def test_an_export_of_only_ties_says_they_were_left_out(store, workspace):
    store.add_preference(_pair(store), "tie", annotator="x")
    with pytest.raises(UserError, match="nothing to export.*Left out: 1 tie labels"):
        export_snapshot(store, workspace, "dpo")
