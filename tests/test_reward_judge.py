"""The reward-model judge (issue 13): a Bradley-Terry reward model trained from labels with TRL's RewardTrainer
on the tiny model, through the real CLI and worker; the reward and implicit judges; bad input."""

import json

import pytest

from alignstudio.cli import main as cli_main
from alignstudio.core.errors import UserError
from alignstudio.core.formats import write_records
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.training.runner import SUCCEEDED, RunFolder

TOPICS = ["tea", "rivers", "chess", "bread", "stars", "maps", "bees", "clocks", "rain", "glass", "salt", "wolves",
          "paper", "sand", "kites", "owls", "iron", "moss", "ships", "bells", "wheat", "foxes", "snow", "silk",
          "coal", "frogs", "ink", "lamps", "pears", "reeds"]


def separable_pairs(topics, offset=0):
    """A trivially separable preference: the chosen answer is a bulleted list, the rejected one a curt refusal."""
    rows = []
    for i, topic in enumerate(topics):
        prompt = [{"role": "user", "content": f"Tell me about {topic} (question {i + offset})."}]
        chosen = f"- {topic} are interesting\n- here are three facts about {topic}\n- I hope this helps"
        rejected = "No. I will not answer that."
        rows.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}]})
    return rows


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return Workspace.open(tmp_path_factory.mktemp("reward") / "ws")


@pytest.fixture(scope="module")
def store(ws):
    s = Store(ws.db_path)
    yield s
    s.close()


@pytest.fixture(scope="module")
def reward_run(ws, tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reward-run")
    data = write_records(separable_pairs(TOPICS), folder / "pairs.jsonl")
    out = folder / "rm"
    code = cli_main(["--workspace", str(ws.root), "train", "--method", "reward", "--data", str(data), "--model",
                     str(tiny_model_dir), "--out", str(out), "--max-steps", "24", "--max-length", "128",
                     "--batch-size", "4", "--lr", "2e-3", "--save-steps", "24", "--seed", "1",
                     "--register-as", "rm-tiny"])
    return code, RunFolder(out)


def test_reward_model_ranks_held_out_pairs_of_a_separable_preference(reward_run, store):
    code, run = reward_run
    assert code == 0, (run.log_path.read_text() if run.log_path.exists() else "")
    assert run.status()["state"] == SUCCEEDED
    meta = json.loads((run.model_dir / "reward.json").read_text())
    held = meta["heldout"]
    assert held["pairs"] >= 6 and held["accuracy"] == 1.0
    assert held["calibration"] and meta["tie_margin"] >= 0
    card = run.card()
    assert card["reward"]["accuracy"] == 1.0 and card["reward"]["split"]["heldout_rows"] == held["pairs"]
    assert any("accuracy" in row for row in run.metrics())          # live plots read the same metrics stream
    versions = {v["name"]: v for v in store.model_versions()}
    assert versions["rm-tiny"]["kind"] == "reward"                  # registered as a judge version


def test_reward_model_scores_new_prompts(reward_run):
    from alignstudio.training.reward import load_reward_model, score_texts

    _, run = reward_run
    model, tokenizer, _ = load_reward_model(run.model_dir)
    new = separable_pairs(["cats", "boats", "tulips", "drums"], offset=100)
    prompts = [r["prompt"] for r in new]
    good = score_texts(model, tokenizer, prompts, [r["chosen"] for r in new])
    bad = score_texts(model, tokenizer, prompts, [r["rejected"] for r in new])
    assert all(g > b for g, b in zip(good, bad))


@pytest.mark.parametrize("rows, message", [
    ([], "no labels"),
    ([{"prompt": "hi", "completion": "hello", "label": True}, {"prompt": "yo", "completion": "hey", "label": True}],
     "one class only"),
])
def test_bad_reward_data_is_one_clear_error_and_writes_nothing(ws, tiny_model_dir, tmp_path, capsys, rows, message):
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rm-bad"
    code = cli_main(["--workspace", str(ws.root), "train", "--method", "reward", "--data", str(data), "--model",
                     str(tiny_model_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
