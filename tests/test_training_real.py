"""The real SmolLM2-135M-Instruct: 2 LoRA DPO steps through the worker, then the adapter reloads and talks."""

import json
from pathlib import Path

import pytest
from servers import ROOT

from alignstudio.core.models import EMBEDDED_HUB_ID, EMBEDDED_NAME
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.services.sampling.sampler import Generator
from alignstudio.training.diagnostics import LN2
from alignstudio.training.run_folder import SUCCEEDED
from alignstudio.training.run_queue import RunManager
from alignstudio.training.spec import RunSpec

pytestmark = pytest.mark.real_model


def test_lora_dpo_on_smollm2_reloads_and_generates(real_workspace):
    store = Store(real_workspace.db_path)
    runs = RunManager(real_workspace, store)
    spec = RunSpec(
        method="dpo",
        model="smollm2",
        data=str(ROOT / "data" / "example_preferences.jsonl"),
        max_steps=2,
        max_length=128,
        batch_size=2,
        learning_rate=5e-5,
        seed=0,
        compare_prompts=0,
    )  # the side-by-side answers are the next test's (here they cost ~25 s)
    name = runs.start(spec, "smollm2-dpo")
    try:
        status = runs.wait(name, timeout=900)
    finally:
        runs.close()  # no worker outlives the tests
    assert status.state == SUCCEEDED, runs.log_tail(name)
    rows = runs.metrics(name)
    assert abs(rows[0]["loss"] - LN2) < 0.01 and len(rows) == 2

    run = runs.folder(name)
    config = json.loads((run.model_dir / "adapter_config.json").read_text())
    # the adapter names the hub id (portable); the local folder is in the run card and still resolves here
    assert config["base_model_name_or_path"] == EMBEDDED_HUB_ID
    card = json.loads(run.card_path.read_text())
    assert Path(card["base_model"]["folder"]).resolve() == (real_workspace.models_dir / EMBEDDED_NAME).resolve()
    version = {v["name"]: v for v in store.model_versions()}[status.registered_as]
    assert version["kind"] == "adapter" and version["base"] == EMBEDDED_NAME

    registry = ModelRegistry(real_workspace, store)
    ref = registry.resolve(status.registered_as)
    assert ref.is_adapter and ref.base_folder == real_workspace.models_dir / EMBEDDED_NAME
    model, tokenizer = registry.load(ref)
    (text,) = Generator(ref.name, model, tokenizer).complete(
        [[{"role": "user", "content": "What is the capital of France?"}]], [0.3], top_p=0.9, max_new_tokens=24, seed=0
    )
    assert "Paris" in text  # 2 small LoRA steps keep the model's knowledge


FILLER = (
    "Well, that is a really interesting question, and there is a lot one could say about it before getting "
    "to the point, so let me ramble for a while first. "
)


def test_a_default_run_on_a_consistent_preference_learns_it_on_held_out_prompts(real_workspace, tmp_path):
    """Default settings, cut to 12 steps: 40 pairs that always prefer the answer without a rambling preamble.
    The held-out prompts were never trained on; their reward accuracy must end above chance and the verdict
    say so."""
    prompts = [json.loads(line)["prompt"] for line in (ROOT / "data" / "prompts.jsonl").read_text().splitlines()[:40]]
    data = tmp_path / "consistent.jsonl"
    with open(data, "w") as handle:
        for prompt in prompts:
            answer = f"In short: {prompt.rstrip('?.!')} comes down to a few clear steps, done in order."
            handle.write(json.dumps({"prompt": prompt, "chosen": answer, "rejected": FILLER + answer}) + "\n")
    store = Store(real_workspace.db_path)
    runs = RunManager(real_workspace, store)
    # the default schedule (learning rate, batch, warm-up, held-out split), cut short to 12 steps for CI
    name = runs.start(
        RunSpec(method="dpo", model="smollm2", data=str(data), compare_prompts=1, max_steps=12), "smollm2-default"
    )
    try:
        status = runs.wait(name, timeout=1500)
    finally:
        runs.close()  # no worker outlives the tests
    assert status.state == SUCCEEDED, runs.log_tail(name)
    card = runs.card(name)
    held = runs.folder(name).heldout()
    assert card["dataset"]["heldout"]["heldout_rows"] >= 6 and held
    assert card["schedule"]["reasons"]["learning_rate"] != "you set it"
    best = max(r["eval_rewards/accuracies"] for r in held)
    assert best > 0.5 and card["verdict"]["heldout_accuracy"] > 0.5
    # learned beyond chance, or too few held-out pairs to tell at this count: either way with its interval
    verdicts = ("learned", "memorized", "over-optimized", "too-few-to-tell", "pairs-only")
    assert card["verdict"]["code"] in verdicts, card["verdict"]
    assert card["verdict"]["interval_low"] is not None and "95% interval" in card["verdict"]["headline"]
    assert status.verdict.startswith(("Learned", "Too few held-out pairs to tell"))
    assert len(card["before_after"]) == 1 and card["before_after"][0]["trained"]
