"""Real training runs on the tiny model, through the real worker subprocess (DPO, KTO, ORPO, SimPO),
plus cancel/resume, a broken dataset, the run card, LoRA weights, generate from a run and merging."""

import hashlib
import json
import math
import time

import pytest
import torch
from safetensors.torch import load_file
from servers import ROOT

from alignstudio.cli import main as cli_main
from alignstudio.core.models import cpu_has_fast_bf16
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.training.diagnostics import LN2
from alignstudio.training.run_folder import CANCELLED, FAILED, SUCCEEDED, RunFolder
from alignstudio.training.run_queue import RunManager
from alignstudio.training.spec import RunSpec

PAIRS = ROOT / "data" / "example_preferences.jsonl"
FAST = dict(max_length=64, batch_size=2, learning_rate=1e-3)


@pytest.fixture(scope="module")
def runs(ws, ws_store):
    manager = RunManager(ws, ws_store)
    yield manager
    manager.close()  # no worker outlives the tests


@pytest.fixture(scope="module")
def dpo_run(ws, tiny_model_dir, tmp_path_factory):
    """A 4-step LoRA DPO run started the way users do: `alignstudio train` in the foreground."""
    out = tmp_path_factory.mktemp("cli-run") / "dpo-run"
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
            str(tiny_model_dir),
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
            "--save-steps",
            "2",
            "--seed",
            "3",
        ]
    )
    return code, RunFolder(out)


def test_dpo_run_succeeds_through_the_cli_and_registers_the_adapter(dpo_run, ws_store, tiny_model_dir, capsys):
    code, run = dpo_run
    status = run.status()
    assert code == 0 and status["state"] == SUCCEEDED, run.log_tail()
    assert status["step"] == 4 and status["pid"]
    versions = {v["name"]: v for v in ws_store.model_versions()}
    version = versions[status["registered_as"]]
    assert version["kind"] == "adapter" and version["base"] == str(tiny_model_dir.resolve())
    assert version["path"] == str(run.model_dir) and version["run_dir"] == str(run.path)
    assert "step 4/4" in run.log_tail(100)  # the worker's output went to log.txt


def test_first_dpo_loss_is_ln2_and_every_metric_is_finite(dpo_run):
    rows = dpo_run[1].metrics()
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert abs(rows[0]["loss"] - LN2) < 0.01
    for row in rows:
        for key, value in row.items():
            assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    for key in (
        "rewards/accuracies",
        "rewards/margins",
        "rewards/chosen",
        "rewards/rejected",
        "logps/chosen",
        "learning_rate",
        "tokens_per_s",
        "eta_s",
        "grad_norm",
    ):
        assert key in rows[-1], key
    assert rows[-1]["eta_s"] == 0 and rows[0]["tokens_per_s"] > 0


def test_run_card_records_data_config_versions_and_results(dpo_run):
    run = dpo_run[1]
    card = run.card()
    assert card["state"] == SUCCEEDED and card["method"] == "dpo" and card["seed"] == 3
    assert card["dataset"]["fingerprint"] == "sha256:" + hashlib.sha256(PAIRS.read_bytes()).hexdigest()
    assert card["dataset"]["rows"] == 12
    assert card["spec"] == run.spec().to_dict()
    assert card["trainer_config"]["beta"] == 0.1 and card["trainer_config"]["loss_type"] == ["sigmoid"]
    assert card["trainer_config"]["use_cpu"] is True
    assert card["trainer_config"]["bf16"] is cpu_has_fast_bf16()  # precision auto: bf16 autocast where native
    assert card["libraries"]["trl"] == "1.16.0" and card["libraries"]["torch"]
    assert card["duration_s"] > 0 and card["final_metrics"]["step"] == 4
    assert card["trainable_parameters"]["trainable"] < card["trainable_parameters"]["total"]
    assert card["model"]["registered_as"] == run.status()["registered_as"]


def test_lora_moves_only_the_adapter(dpo_run, tiny_model_dir):
    run = dpo_run[1]
    config = json.loads((run.model_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    assert set(config["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert not list(run.model_dir.glob("*.bin")) and (run.model_dir / "tokenizer_config.json").exists()
    adapter = load_file(run.model_dir / "adapter_model.safetensors")
    lora_b = [t for k, t in adapter.items() if "lora_B" in k]
    assert lora_b and any(t.abs().max() > 0 for t in lora_b)  # B starts at zero: it moved
    assert not any("base_layer" in k for k in adapter)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    original = load_file(tiny_model_dir / "model.safetensors")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), run.model_dir)
    base = model.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight
    assert torch.equal(base, original["model.layers.0.self_attn.q_proj.weight"])  # base weights unchanged
    assert len(list(run.checkpoints_dir.glob("checkpoint-*"))) <= 2  # keep the last 2


def test_generate_from_a_run_folder(dpo_run, ws, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"id": "a", "prompt": "Say hello."}\n{"id": "b", "prompt": [{"role": "user", "content": "Name a colour."}]}\n'
    )
    out = tmp_path / "out.jsonl"
    args = [
        "--workspace",
        str(ws.root),
        "generate",
        "--model",
        str(dpo_run[1].path),
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--max-new-tokens",
        "8",
        "--seed",
        "1",
    ]
    assert cli_main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert all(isinstance(r["completion"], str) for r in rows) and any(r["completion"] for r in rows)
    assert rows[0]["params"] == {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 8, "seed": 1}
    again = tmp_path / "again.jsonl"
    assert cli_main(args[:-6] + ["--out", str(again), "--max-new-tokens", "8", "--seed", "1"]) == 0
    assert again.read_text() == out.read_text()  # seeded


def test_merge_adapter_into_a_full_checkpoint(dpo_run, ws, ws_store):
    from alignstudio.training.merge import merge_adapter

    registry = ModelRegistry(ws, ws_store)
    result = merge_adapter(registry, str(dpo_run[1].path))
    assert result.name == "dpo-run-merged" and (result.folder / "model.safetensors").is_file()
    assert not (result.folder / "adapter_config.json").exists()
    version = {v["name"]: v for v in ws_store.model_versions()}[result.name]
    assert version["kind"] == "full"
    ref = registry.resolve(result.name)
    assert not ref.is_adapter
    merged, _ = registry.load(ref)
    adapted, _ = registry.load(registry.resolve(str(dpo_run[1].path)))  # the registry merges adapters too
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-5)


def test_resume_after_the_final_checkpoint_saves_the_model_without_training(dpo_run, runs, ws):
    """A run that failed after its last step (e.g. while saving) is finished from the final checkpoint."""
    import shutil

    source = dpo_run[1]
    run = RunFolder.create(ws.runs_dir / "failed-at-save", source.spec())
    shutil.copytree(source.checkpoints_dir / "checkpoint-4", run.checkpoints_dir / "checkpoint-4")
    runs.pump()
    status = runs.wait(run.name, timeout=300)
    assert status.state == SUCCEEDED and status.step == 4, run.log_tail()
    assert "is the final step" in run.log_tail(50) and not run.metrics()
    assert (run.model_dir / "adapter_model.safetensors").read_bytes() == (
        source.checkpoints_dir / "checkpoint-4" / "adapter_model.safetensors"
    ).read_bytes()
    assert (
        json.loads((run.model_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
        == json.loads((source.model_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    )
    assert not (run.model_dir / "optimizer.pt").exists() and run.card()["resumed_from"] == "checkpoint-4"


def test_kto_run_succeeds_through_the_runner(runs, tiny_model_dir):
    spec = RunSpec(method="kto", model=str(tiny_model_dir), data=str(PAIRS), max_steps=3, **FAST)
    name = runs.start(spec, "kto-run")
    status = runs.wait(name, timeout=300)
    assert status.state == SUCCEEDED, runs.log_tail(name)
    rows = runs.metrics(name)
    assert abs(rows[0]["loss"] - 0.5) < 0.01  # 1 - sigmoid(0): policy equals reference at step 1
    assert all("kl" in r and math.isfinite(r["kl"]) for r in rows)
    dataset = runs.folder(name).card()["dataset"]  # pairs unpaired into 24 KTO rows, some held out by prompt
    assert dataset["training_rows"] + dataset["heldout"]["heldout_rows"] == 24 and dataset["heldout"]["heldout_rows"]


def test_cancel_keeps_a_checkpoint_and_resume_finishes(runs, tiny_model_dir):
    spec = RunSpec(method="dpo", model=str(tiny_model_dir), data=str(PAIRS), max_steps=8, save_steps=100, **FAST)
    name = runs.start(spec, "cancel-me")
    run = runs.folder(name)
    deadline = time.time() + 300
    while not run.metrics():
        assert time.time() < deadline and run.state in ("queued", "running"), run.log_tail()
        time.sleep(0.02)
    runs.cancel(name)
    status = runs.wait(name, timeout=300)
    assert status.state == CANCELLED, run.log_tail()
    checkpoint = run.last_checkpoint()
    assert checkpoint is not None and int(checkpoint.name.split("-")[1]) == status.step < 8
    assert not run.model_dir.exists()
    runs.resume(name)
    status = runs.wait(name, timeout=300)
    assert status.state == SUCCEEDED and status.resumes == 1, run.log_tail()
    assert [r["step"] for r in run.metrics()] == list(range(1, 9))  # no step lost or repeated
    assert run.card()["resumed_from"] == checkpoint.name


def test_broken_dataset_fails_with_a_readable_error(runs, tiny_model_dir, tmp_path):
    broken = tmp_path / "broken.jsonl"
    good = PAIRS.read_text().splitlines()[0]
    row = json.loads(good)
    del row["rejected"]
    broken.write_text(good + "\n" + json.dumps(row) + "\n" + good + "\n")
    name = runs.start(RunSpec(method="dpo", model=str(tiny_model_dir), data=str(broken), max_steps=2, **FAST))
    status = runs.wait(name, timeout=300)
    assert status.state == FAILED
    assert status.error == "broken.jsonl, row 2: missing 'rejected'"
    assert "missing 'rejected'" in runs.log_tail(name)
    card = runs.folder(name).card()
    assert card["state"] == FAILED and card["error"] == status.error and card["spec"]["data"] == str(broken)


@pytest.mark.parametrize("method", ["orpo", "simpo"])
def test_reference_free_methods_smoke(runs, tiny_model_dir, method):
    spec = RunSpec(method=method, model=str(tiny_model_dir), data=str(PAIRS), max_steps=1, **FAST)
    name = runs.start(spec, f"{method}-smoke")
    status = runs.wait(name, timeout=300)
    assert status.state == SUCCEEDED, runs.log_tail(name)
    rows = runs.metrics(name)
    assert len(rows) == 1 and math.isfinite(rows[0]["loss"]) and "rewards/accuracies" in rows[0]
    assert rows[0]["tokens_per_s"] > 0
    assert (runs.folder(name).model_dir / "adapter_model.safetensors").is_file()


def test_print_launch_prepares_the_run_and_prints_accelerate(ws, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "gpu-run"
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "ipo",
            "--data",
            str(PAIRS),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--print-launch",
            "--num-processes",
            "4",
            "--deepspeed",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and RunFolder(out).state == "queued" and RunFolder(out).spec().loss_type == ["ipo"]
    assert "accelerate launch --config_file" in printed and "deepspeed_zero3.yaml" in printed
    assert "--num_processes 4 -m alignstudio.training.worker " + str(out) in printed


def test_nan_stops_the_run_without_saving_broken_weights(runs, tiny_model_dir):
    spec = RunSpec(
        method="dpo",
        model=str(tiny_model_dir),
        data=str(PAIRS),
        max_steps=6,
        save_steps=1,
        max_length=64,
        batch_size=2,
        learning_rate=1e30,
        warmup_steps=0,
    )
    name = runs.start(spec, "diverges")
    status = runs.wait(name, timeout=300)
    assert status.state == FAILED and status.error.startswith("training diverged: grad_norm")
    assert "NaN at step 2" in status.error
    run = runs.folder(name)
    assert [c.name for c in run.checkpoints_dir.glob("checkpoint-*")] == ["checkpoint-1"]  # none after NaN
    assert run.card()["diagnostics"][0]["code"] == "nan"


@pytest.mark.slow
def test_two_processes_under_torchrun_write_once(ws, tiny_model_dir, tmp_path):
    """The worker as `accelerate launch` runs it on a GPU node, here as 2 CPU processes (gloo)."""
    import os
    import subprocess
    import sys

    run = RunFolder.create(
        tmp_path / "ddp", RunSpec(method="dpo", model=str(tiny_model_dir), data=str(PAIRS), max_steps=2, **FAST)
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "alignstudio.training.worker",
            str(run.path),
            "--workspace",
            str(ws.root),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert run.status()["state"] == SUCCEEDED
    assert [r["step"] for r in run.metrics()] == [1, 2]  # one line per step, not one per process
    assert (run.model_dir / "adapter_model.safetensors").is_file()
    assert run.card()["processes"] == 2


@pytest.mark.parametrize("method, first_loss", [("dpo", LN2), ("kto", 0.5)])
def test_a_beta_sweep_computes_the_reference_log_probs_once(tmp_path, tiny_model_dir, method, first_loss):
    """Runs on the same rows, model and max length reuse the reference pass the first one kept
    (training.ref_cache): the second run of a sweep does not compute it again."""
    ws = Workspace.open(tmp_path / "ws")
    store = Store(ws.db_path)
    manager = RunManager(ws, store)
    try:
        names = manager.sweep(
            RunSpec(
                method=method, model=str(tiny_model_dir), data=str(PAIRS), max_steps=2, heldout_fraction=0.0, **FAST
            ),
            betas=[0.1, 0.5],
        )
        for name in names:
            assert manager.wait(name, timeout=300).state == SUCCEEDED, manager.log_tail(name)
        logs = [manager.folder(n).log_path.read_text() for n in names]
        assert ["reference log-probs for the train set: computed" in log for log in logs] == [True, False]
        assert ["reference log-probs for the train set: reused" in log for log in logs] == [False, True]
        firsts = [manager.metrics(n)[0] for n in names]
        assert all(abs(r["loss"] - first_loss) < 1e-3 for r in firsts)  # the kept pass is this reference's own
        assert len(list((ws.root / "cache" / "reference-logps").glob("*.safetensors"))) == 1
    finally:
        manager.close()
        store.close()
