"""The held-out split in real runs (tiny model, real worker subprocess): held-out rows are evaluated, early
stopping fires and the best checkpoint is the one kept, and a run that learned nothing says so in the card,
the CLI's last line and the Train tab."""

import json
import random

import pytest
from safetensors.torch import load_file

from alignstudio.cli import main as cli_main
from alignstudio.services.container import Services
from alignstudio.training.diagnostics import LN2
from alignstudio.training.run_folder import SUCCEEDED, RunFolder
from alignstudio.training.run_queue import RunManager
from alignstudio.training.spec import RunSpec
from alignstudio.training.split import prompt_key
from alignstudio.ui import train as train_tab

WORDS = "apple river stone cloud amber violet copper meadow lantern harbor quiet ember".split()


def noise_pairs(path, n=40, seed=0):
    """n pairs on n prompts whose 'preference' is a coin flip: nothing to learn, everything to memorize."""
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for i in range(n):
            a, b = " ".join(rng.choices(WORDS, k=6)), " ".join(rng.choices(WORDS, k=6))
            handle.write(json.dumps({"prompt": f"Say something about item {i}.", "chosen": a, "rejected": b}) + "\n")
    return path


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    return noise_pairs(tmp_path_factory.mktemp("data") / "noise.jsonl")


def test_early_stopping_fires_and_the_best_checkpoint_is_the_model(ws, ws_store, noise, tiny_model_dir):
    runs = RunManager(ws, ws_store)
    spec = RunSpec(
        method="dpo",
        model=str(tiny_model_dir),
        data=str(noise),
        max_steps=60,
        learning_rate=5e-3,
        batch_size=2,
        max_length=48,
        patience=2,
        compare_prompts=2,
        seed=1,
    )
    name = runs.start(spec, "early")
    status = runs.wait(name, timeout=600)
    run = runs.folder(name)
    assert status.state == SUCCEEDED, run.log_tail(80)
    held = run.heldout()
    assert held and all("eval_loss" in r and "eval_rewards/accuracies" in r for r in held)
    best = min(held, key=lambda r: r["eval_loss"])
    card = run.card()
    # stopped before max_steps, after `patience` evaluations that did not beat the best
    assert status.stopped_early_at and status.step < 60
    later = [r for r in held if r["step"] > best["step"]]
    assert len(later) == 2 and all(r["eval_loss"] >= best["eval_loss"] for r in later)
    assert status.best_step == best["step"] == card["verdict"]["best_step"]
    # the model saved is the best checkpoint's adapter, not the last step's
    kept = load_file(run.checkpoints_dir / f"checkpoint-{best['step']}" / "adapter_model.safetensors")
    final = load_file(run.model_dir / "adapter_model.safetensors")
    assert final.keys() <= kept.keys()
    assert all((final[k] == kept[k]).all() for k in final)
    last = sorted(run.checkpoints_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    if last.name != f"checkpoint-{best['step']}":
        moved = load_file(last / "adapter_model.safetensors")
        assert any(not (final[k] == moved[k]).all() for k in final)
    # the split is by prompt and recorded; before/after answers exist for held-out prompts only
    split = card["dataset"]["heldout"]
    assert split["heldout_rows"] >= 6 and split["train_rows"] + split["heldout_rows"] == 40
    train_prompts = {prompt_key(r["prompt"]) for r in map(json.loads, noise.read_text().splitlines())}
    assert len(card["before_after"]) == 2
    for row in card["before_after"]:
        assert row["heldout"] and prompt_key(row["prompt"]) in train_prompts
        assert set(row) >= {"prompt", "base", "trained", "seed"}
    assert "memoriz" in json.dumps(card["diagnostics"]) or card["verdict"]["code"] != "learned"


def test_a_run_that_learns_nothing_says_so_everywhere(ws, ws_store, noise, tiny_model_dir, capsys):
    out = ws.root / "runs-cli" / "flat"
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "dpo",
            "--data",
            str(noise),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--max-steps",
            "6",
            "--lr",
            "1e-9",
            "--max-length",
            "48",
            "--compare-prompts",
            "0",
        ]
    )
    printed = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert code == 0
    assert printed[-1].startswith("verdict: Nothing learned"), printed[-5:]
    assert any(ln.startswith("held-out at step") for ln in printed)  # held-out evaluations are printed live
    run = RunFolder(out)
    card = run.card()
    assert card["verdict"]["code"] == "nothing-learned" and card["before_after"] == []
    assert abs(run.metrics()[-1]["loss"] - LN2) < 0.01
    assert card["schedule"]["reasons"]["learning_rate"] == "you set it"
    assert card["trainer_config"]["learning_rate"] == 1e-9
    # the Train tab shows the verdict, never "no warning signs"
    services = Services.assemble(ws, ws_store, "smollm2", RunManager(ws, ws_store, autostart=False))
    view = train_tab.run_view(services, str(out))
    assert "Nothing learned" in view[1] and "No warning signs" not in view[1]
    assert "Held out" in view[0]  # the split's note
    loss = view[4]
    assert train_tab.HELDOUT in set(loss["series"]) and loss[loss["series"] == train_tab.HELDOUT]["value"].notna().any()


def test_the_schedule_is_chosen_from_the_data_and_written_into_the_card(ws, ws_store, noise, tiny_model_dir, capsys):
    out = ws.root / "runs-cli" / "auto"
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "dpo",
            "--data",
            str(noise),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--max-length",
            "32",
            "--heldout-fraction",
            "0",
            "--compare-prompts",
            "0",
            "--epochs",
            "1",
        ]
    )
    assert code == 0
    card = RunFolder(out).card()
    schedule = card["schedule"]
    # no split: all 40 rows train; batch 4 (>= 32 rows); LoRA DPO's rate; one epoch because it was asked for
    assert card["dataset"]["training_rows"] == 40 and card["dataset"]["heldout"]["heldout_rows"] == 0
    assert schedule["batch_size"] == 4 and schedule["learning_rate"] == 2e-4
    assert schedule["num_train_epochs"] == 1 and schedule["reasons"]["num_train_epochs"] == "you set it"
    assert "LoRA" in schedule["reasons"]["learning_rate"]
    assert card["trainer_config"]["per_device_train_batch_size"] == 4
    assert card["trainer_config"]["learning_rate"] == 2e-4 and card["final_metrics"]["step"] == 10
    assert card["verdict"]["code"] in ("fit-unchecked", "nothing-learned")
