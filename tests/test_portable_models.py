"""Runs that fit the Hugging Face ecosystem: TensorBoard event files read back with TensorBoard's reader,
adapters that name a portable base and load with `AutoPeftModelForCausalLM` from an offline HF cache,
`export-model` folders (adapter and merged), and model cards whose YAML header parses."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ROOT

from alignstudio.cli import main as cli_main
from alignstudio.core.errors import UserError
from alignstudio.core.models import EMBEDDED_HUB_ID, EMBEDDED_NAME, portable_name
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.services.data.snapshots import export_snapshot
from alignstudio.training.run_folder import SUCCEEDED, RunFolder
from alignstudio.training.spec import RunSpec
from alignstudio.training.trackers import check_trackers

PAIRS = ROOT / "data" / "example_preferences.jsonl"
HUB_ID = "tiny-org/tiny-llama"


@pytest.fixture(scope="module")
def hub_named_base(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model under a local folder whose config names a hub id, as a downloaded checkpoint's does."""
    folder = tmp_path_factory.mktemp("hubbase") / "tiny-llama-local"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["_name_or_path"] = HUB_ID
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def run(ws, hub_named_base, tmp_path_factory) -> RunFolder:
    """A 4-step LoRA DPO run reporting to TensorBoard, started with `alignstudio train`."""
    out = tmp_path_factory.mktemp("runs") / "tb-run"
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "dpo",
            "--data",
            str(PAIRS),
            "--model",
            str(hub_named_base),
            "--out",
            str(out),
            "--max-steps",
            "4",
            "--max-length",
            "64",
            "--batch-size",
            "2",
            "--lr",
            "1e-3",
            "--heldout-fraction",
            "0",
            "--compare-prompts",
            "0",
            "--report-to",
            "tensorboard",
        ]
    )
    folder = RunFolder(out)
    assert code == 0 and folder.status()["state"] == SUCCEEDED, folder.log_tail()
    return folder


def test_tensorboard_events_hold_the_training_scalars(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = list((run.path / "tensorboard").rglob("events.out.tfevents.*"))
    assert events, "no event file in the run folder"
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for tag in ("train/loss", "train/rewards/accuracies", "train/rewards/margins", "train/rewards/chosen"):
        assert tag in tags, (tag, sorted(tags))
    losses = acc.Scalars("train/loss")
    metrics = run.metrics()
    assert [e.step for e in losses] == [r["step"] for r in metrics]
    assert losses[0].value == pytest.approx(metrics[0]["loss"], rel=1e-4)
    assert json.loads(run.card_path.read_text())["spec"]["report_to"] == ["tensorboard"]


def test_adapter_names_the_portable_base_and_still_resolves_locally(run, ws, hub_named_base):
    config = json.loads((run.model_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == HUB_ID
    card = json.loads(run.card_path.read_text())
    assert card["base_model"]["portable"] == HUB_ID
    assert Path(card["base_model"]["folder"]).resolve() == hub_named_base.resolve()
    ref = ModelRegistry(ws, Store(ws.db_path)).resolve(str(run.path))
    assert ref.is_adapter and ref.base_folder.resolve() == hub_named_base.resolve()


def test_model_card_yaml_names_the_base_and_the_sections_are_filled(run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(run.model_dir / "README.md")
    assert card.data.base_model == HUB_ID and card.data.library_name == "peft"
    assert {"alignstudio", "trl", "dpo", "lora"} <= set(card.data.tags)
    text = card.text
    for heading in ("## Method and settings", "## Data", "## Held-out results", "## Evaluation against the base"):
        assert heading in text
    assert "| beta | 0.1 |" in text and "fingerprint: `sha256:" in text
    assert "More Information Needed" not in text  # PEFT's empty template is gone


def _populate_hf_cache(hf_home: Path, repo_id: str, files: Path) -> None:
    """The hub cache layout (models--org--name/{refs/main, snapshots/REV}) that offline mode reads."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    revision = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(files, repo / "snapshots" / revision)


LOAD_SCRIPT = """
import json, sys, torch
from peft import AutoPeftModelForCausalLM, PeftModel
from transformers import AutoModelForCausalLM
folder, local_base = sys.argv[1], sys.argv[2]
ids = torch.tensor([[1, 2, 3, 4, 5]])
hub = AutoPeftModelForCausalLM.from_pretrained(folder).eval()
explicit = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(local_base), folder).eval()
with torch.no_grad():
    print(json.dumps({"same": torch.allclose(hub(ids).logits, explicit(ids).logits, atol=1e-5)}))
"""


def test_exported_adapter_loads_with_automodel_from_an_offline_cache(run, ws, hub_named_base, tmp_path):
    out = tmp_path / "exported"
    assert cli_main(["--workspace", str(ws.root), "export-model", str(run.path), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer_config.json",
        "README.md",
        "card.json",
    } <= names and "training_args.bin" not in names
    assert "chat_template.jinja" in names or "chat_template" in (out / "tokenizer_config.json").read_text()
    hf_home = tmp_path / "hf"
    _populate_hf_cache(hf_home, HUB_ID, hub_named_base)
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(out), str(hub_named_base)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"same": True}


def test_export_merged_is_a_plain_checkpoint_with_a_card(run, ws, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    assert cli_main(["--workspace", str(ws.root), "export-model", str(run.path), "--out", str(out), "--merged"]) == 0
    assert not (out / "adapter_config.json").exists() and (out / "config.json").is_file()
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == HUB_ID and card.data.library_name == "transformers"
    assert json.loads((out / "merge_info.json").read_text())["base"] == HUB_ID
    AutoModelForCausalLM.from_pretrained(out)


def test_export_into_a_non_empty_folder_is_refused_and_writes_nothing(run, ws, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert cli_main(["--workspace", str(ws.root), "export-model", str(run.path), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert not list(tmp_path.glob(".*partial"))


def test_trackers_are_checked_before_a_run_exists(ws, tmp_path, capsys):
    assert check_trackers(["none"]) == [] and check_trackers(["tensorboard", "tensorboard"]) == ["tensorboard"]
    with pytest.raises(UserError, match="unknown tracker"):
        RunSpec(data="x", report_to=["comet"])
    with pytest.raises(UserError, match="cannot be combined"):
        RunSpec(data="x", report_to=["none", "tensorboard"])
    out = tmp_path / "never"
    missing = [name for name in ("wandb", "mlflow", "trackio") if __import__("importlib").util.find_spec(name) is None]
    if not missing:
        pytest.skip("every tracker package is installed")
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "dpo",
            "--data",
            str(PAIRS),
            "--out",
            str(out),
            "--report-to",
            missing[0],
        ]
    )
    assert code == 2 and f"pip install {missing[0]}" in capsys.readouterr().err
    assert not out.exists()


def test_portable_names(tmp_path):
    embedded = tmp_path / EMBEDDED_NAME
    embedded.mkdir()
    assert portable_name(embedded) == EMBEDDED_HUB_ID
    local = tmp_path / "mine"
    local.mkdir()
    (local / "config.json").write_text(json.dumps({"_name_or_path": "/data/checkpoints/x"}))
    assert portable_name(local) == str(local.resolve())


def test_a_snapshot_records_its_label_sources(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    store = Store(ws.db_path)
    pairs = [
        store.add_pair([{"role": "user", "content": f"q{i}"}], f"a{i}", f"b{i}", model_a="m", model_b="m")
        for i in range(3)
    ]
    store.add_preference(pairs[0], "A", annotator="ann")
    store.add_preference(pairs[1], "B", annotator="ann")
    store.add_preference(pairs[2], "A", source="judge:rules")
    snap = export_snapshot(store, ws, "dpo")
    store.close()
    assert json.loads((snap.path / "label_sources.json").read_text()) == {"human": 2, "judge": 1}
    from alignstudio.training.data import load_training_data

    assert load_training_data(str(snap.path), "dpo").label_sources == {"human": 2, "judge": 1}


def test_an_evaluation_against_the_base_goes_into_the_model_card(run, tmp_path):
    from huggingface_hub import ModelCard

    from alignstudio.training.model_card import record_evaluation

    copy = tmp_path / "run"
    shutil.copytree(run.path, copy, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    assert "Not run yet" in (copy / "model" / "README.md").read_text()
    record_evaluation(
        copy,
        {
            "baseline": "smollm2-135m-instruct",
            "judge": "reward:rm",
            "n": 40,
            "wins": 25,
            "ties": 5,
            "losses": 10,
            "win_rate": 0.6875,
            "win_rate_ci": [0.55, 0.8],
            "perplexity_change_pct": 2.5,
            "report": "evals/x.json",
            "warning": None,
        },
    )
    text = ModelCard.load(copy / "model" / "README.md").text
    assert "win rate 0.688 (95% CI [0.55, 0.8]), W/T/L 25/5/10" in text
    assert "alignment tax: perplexity on held-out text +2.5%" in text
    assert json.loads((copy / "card.json").read_text())["evaluation"]["wins"] == 25
