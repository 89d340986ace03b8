"""Dataset cards: every snapshot and export folder gets a README.md the Hub reads (license, task categories, size
category, configs) saying how the data was made and what the columns mean; `export --push-to-hub` fails cleanly
offline (no network in tests) and leaves nothing behind."""

import os

import datasets
import pytest
from huggingface_hub import DatasetCard
from servers import cli

from alignstudio.core.errors import UserError
from alignstudio.core.store import Store
from alignstudio.services.data.card import size_category
from alignstudio.services.data.snapshots import export_snapshot

MSG = [{"role": "user", "content": "Capital of France?"}]


def _labels(store):
    for i in range(4):
        pair = store.add_pair(
            MSG,
            f"Paris {i}.",
            f"Lyon {i}.",
            model_a="sft-model",
            model_b="sft-model",
            params_a={"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 64, "seed": i},
            params_b={"temperature": 1.0, "top_p": 0.9, "max_new_tokens": 64, "seed": i},
        )
        store.add_preference(pair, "A", annotator="ann", shown_left="A")
        store.add_preference(pair, "A" if i < 3 else "B", annotator="bob", shown_left="B")
    store.add_preference(store.add_pair(MSG, "x", "y", model_a="m", model_b="m"), "tie", annotator="ann")


def test_snapshot_and_export_folders_get_a_card_the_hub_reads(store, workspace, tmp_path):
    _labels(store)
    out = tmp_path / "exported" / "pairs.jsonl"
    snap = export_snapshot(store, workspace, "dpo", out=[str(out)], license_id="cc-by-4.0")
    card_path = snap.path / "README.md"
    assert snap.cards == [card_path, out.parent / "README.md"]
    card = DatasetCard.load(card_path)
    meta = card.data.to_dict()
    assert meta["license"] == "cc-by-4.0" and meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    text = card.text
    assert "`sft-model`: max_new_tokens=64, temperature=0.7, top_p=0.9 (4 answers)" in text
    assert "max_new_tokens=64, temperature=1.0, top_p=0.9 (4 answers)" in text
    assert "Human annotators: 2, over 9 labels; at most 2 annotators per item" in text
    assert "Agreement of each annotator with the others' consensus: 75% over 8 labels" in text
    assert "Fleiss' kappa" in text and "63-77%" in text and "Left out: 1 tie labels" in text
    assert "`chosen`:" in text and "`rejected`:" in text
    assert (out.parent / "README.md").read_text() == card_path.read_text()
    assert len(datasets.load_from_disk(str(snap.path))) == snap.rows == 3  # a card does not disturb the folder


def test_a_folder_with_its_own_readme_keeps_it(store, workspace, tmp_path):
    _labels(store)
    mine = tmp_path / "README.md"
    mine.write_text("my notes\n")
    snap = export_snapshot(store, workspace, "kto", include_pairs=True, out=[str(tmp_path / "k.jsonl")])
    assert mine.read_text() == "my notes\n" and snap.cards == [snap.path / "README.md"]
    assert "`completion`:" in (snap.path / "README.md").read_text()


def test_size_categories():
    assert [size_category(n) for n in (5, 1000, 20_000, 999_999)] == ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M"]


def test_push_without_a_token_is_one_error_and_writes_nothing(store, workspace, tmp_path, monkeypatch):
    _labels(store)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(UserError, match="HF_TOKEN"):
        export_snapshot(store, workspace, "dpo", out=[str(tmp_path / "d.jsonl")], push_to_hub="me/prefs")
    assert store.snapshots() == [] and not list(tmp_path.glob("d.*"))


@pytest.mark.parametrize(
    "network",
    [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}],  # offline mode; an endpoint nobody answers
    ids=["offline", "unreachable"],
)
def test_push_offline_fails_cleanly_and_leaves_nothing_behind(store, workspace, tmp_path, monkeypatch, network):
    _labels(store)
    store.close()
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    for key, value in network.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "d.jsonl"
    result = cli("export", "--out", str(out), "--push-to-hub", "me/prefs", workspace=workspace.root)
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = [x for x in result.stderr.splitlines() if "error" in x.lower()]  # one error (and progress bars)
    assert line.startswith("error: could not push to the Hub repository me/prefs"), line
    assert not out.exists() and not (tmp_path / "README.md").exists()
    assert not list(workspace.snapshots_dir.iterdir())  # no snapshot, no partial folder
    store = Store(workspace.db_path)
    assert store.snapshots() == []
    store.close()
    assert os.environ["HF_TOKEN"] not in result.stderr  # the token is never echoed
