"""A reward run's verdict end to end (tiny model, real worker): the held-out pairwise accuracy of the saved model
with its Wilson interval, in the card, the status line and the Train tab's live view; and a policy run on the
same labels compares its answers with the base's under that reward model (generation_check)."""

import json

from alignstudio.core import access
from alignstudio.services.container import Services
from alignstudio.training.run_folder import SUCCEEDED
from alignstudio.training.run_queue import RunManager
from alignstudio.training.spec import RunSpec


def test_a_reward_run_ends_with_a_verdict_and_its_interval(ws, ws_store, tiny_model_dir, tmp_path):
    data = tmp_path / "good.jsonl"
    rows = [{"prompt": f"Tell me about item {i}.", "chosen": "good " * 6, "rejected": "bad " * 6} for i in range(40)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = RunSpec(method="reward", model=str(tiny_model_dir), data=str(data), max_steps=8, learning_rate=1e-3)
    policy = RunSpec(model=str(tiny_model_dir), data=str(data), max_steps=4, max_length=48, drift_budget=0)
    runs = RunManager(ws, ws_store)
    try:
        status = runs.wait(runs.start(spec, "rm"), timeout=600)
        policy_status = runs.wait(runs.start(policy, "policy"), timeout=600)
    finally:
        runs.close()
    assert status.state == SUCCEEDED, runs.log_tail("rm")
    card = runs.card("rm")
    verdict, held = card["verdict"], card["reward"]
    assert verdict["heldout_accuracy"] == held["accuracy"] and verdict["heldout_rows"] == held["pairs"] == 8
    assert verdict["interval_low"] is not None and "on 8 held-out pairs (95% interval" in verdict["headline"]
    assert status.verdict == verdict["headline"]
    with access.acting_as(access.SERVER):
        view = Services.assemble(ws, ws_store, str(tiny_model_dir), runs).runs.live("rm")
    assert view.verdict.code == verdict["code"] and "95% interval" in view.verdict.markdown()
    assert view.reward_usable == (verdict["code"] == "learned")
    # the policy run on the same labels: its answers and the base's judged by that reward model
    assert policy_status.state == SUCCEEDED, runs.log_tail("policy")
    generation = runs.card("policy")["generation"]
    assert generation["judge"] == "reward" and generation["reward_model"] == str(runs.folder("rm").model_dir)
    assert generation["scored"] == 3 and 0 <= generation["trained_preferred"] <= 3
