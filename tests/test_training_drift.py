"""The drift budget on real runs (tiny model, real worker subprocess): a run trained to over-optimize (a high
learning rate on a preference it learns at once) stops on drift, keeps a checkpoint within the budget and gets
the "learned, then over-optimized" verdict; with the budget off it keeps today's behaviour. Also: the worker's
log holds readable lines, no progress-bar redraws."""

import json

import pytest
from safetensors.torch import load_file

from alignstudio.training.drift import DRIFT_FILE
from alignstudio.training.run_folder import SUCCEEDED
from alignstudio.training.run_queue import RunManager
from alignstudio.training.spec import RunSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def good_over_bad(tmp_path_factory):
    """60 pairs with one consistent preference the tiny model learns within a few steps."""
    path = tmp_path_factory.mktemp("data") / "good.jsonl"
    rows = [{"prompt": f"Tell me about item {i}.", "chosen": "good " * 6, "rejected": "bad " * 6} for i in range(60)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _spec(model, data, **changes):
    settings = dict(
        method="dpo",
        model=str(model),
        data=str(data),
        max_steps=40,
        learning_rate=5e-3,  # far too high for this data: the policy leaves its base within a few evaluations
        batch_size=2,
        max_length=48,
        patience=2,
        compare_prompts=0,
        seed=1,
        drift_budget=2.0,  # the figures below read 0.02; the held-out text's perplexity peaks near +4% here
    )
    return RunSpec(**(settings | changes))


def _run(ws, store, spec, name):
    runs = RunManager(ws, store)
    try:
        status = runs.wait(runs.start(spec, name), timeout=900)
    finally:
        runs.close()
    run = runs.folder(name)
    assert status.state == SUCCEEDED, run.log_tail(80)
    return status, run


def test_an_over_optimizing_run_stops_on_drift_and_keeps_a_checkpoint_within_budget(
    ws, ws_store, good_over_bad, tiny_model_dir
):
    status, run = _run(ws, ws_store, _spec(tiny_model_dir, good_over_bad), "drifting")
    held = run.heldout()
    drift = {r["step"]: r["eval_drift"] for r in held}
    assert all("eval_text_perplexity" in r for r in held)
    # stopped on drift: the last `patience` (2) evaluations were over the 2% budget, long before max_steps
    assert status.extra["stopped_on_drift_at"] == status.step < 40
    assert [drift[s] > 0.02 for s in sorted(drift)][-2:] == [True, True]
    # the kept checkpoint is the best held-out loss among those within the budget, and it is the model saved
    within = [r for r in held if r["eval_drift"] <= 0.02]
    best = min(within, key=lambda r: r["eval_loss"])
    assert status.best_step == best["step"] and min(r["eval_loss"] for r in held) < best["eval_loss"]
    kept = load_file(run.checkpoints_dir / f"checkpoint-{best['step']}" / "adapter_model.safetensors")
    final = load_file(run.model_dir / "adapter_model.safetensors")
    assert all((final[k] == kept[k]).all() for k in final)
    # the verdict names it, with the figures; the base's perplexity is kept for a resume
    verdict = run.card()["verdict"]
    assert verdict["code"] == "over-optimized" and verdict["headline"].startswith("Learned, then over-optimized")
    assert verdict["drift"] <= 0.02 < verdict["drift_peak"] and verdict["best_step"] == best["step"]
    assert f"{100 * verdict['drift_peak']:+.1f}%" in verdict["headline"] and "95% interval" in verdict["headline"]
    assert status.verdict.startswith("Learned, then over-optimized")
    saved = json.loads((run.path / DRIFT_FILE).read_text())
    assert saved["text"] == "heldout_text.txt" and saved["tokens"] > 1000 and saved["base_perplexity"] > 1
    # the log reads as lines: the metrics and drift lines, no progress-bar redraws
    log = run.log_path.read_text()
    assert "held-out at step" in log and "drift +" in log
    assert "\r" not in log and "it/s]" not in log and "examples/s]" not in log


def test_with_the_budget_off_the_run_behaves_as_before(ws, ws_store, good_over_bad, tiny_model_dir):
    spec = _spec(tiny_model_dir, good_over_bad, drift_budget=0, compare_prompts=2)
    status, run = _run(ws, ws_store, spec, "no-budget")
    held = run.heldout()
    assert held and not any("eval_drift" in r for r in held) and not (run.path / DRIFT_FILE).exists()
    assert "stopped_on_drift_at" not in status.extra
    # keep-the-best on the held-out loss alone: the held-out loss kept falling, so the run went on
    best = min(held, key=lambda r: r["eval_loss"])
    assert status.best_step == best["step"] and status.step > 12
    card = run.card()
    assert card["verdict"]["code"] in ("learned", "memorized", "pairs-only")
    # the base's and the trained answers compared under the run's implicit reward (generation_check)
    generation = card["generation"]
    assert generation["judge"] == "implicit" and generation["scored"] == 2 == len(card["before_after"])
    assert isinstance(generation["implicit_margin"], float) and generation["base_words"] > 0
