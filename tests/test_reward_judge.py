"""The reward-model judge (issue 13): a Bradley-Terry reward model trained from labels with TRL's RewardTrainer
on the tiny model, through the real CLI and worker; the reward and implicit judges; bad input."""

import json

import pytest

from alignstudio.cli import main as cli_main
from alignstudio.core.errors import UserError
from alignstudio.core.formats import write_records
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.training.run_folder import SUCCEEDED, RunFolder

TOPICS = [
    "tea",
    "rivers",
    "chess",
    "bread",
    "stars",
    "maps",
    "bees",
    "clocks",
    "rain",
    "glass",
    "salt",
    "wolves",
    "paper",
    "sand",
    "kites",
    "owls",
    "iron",
    "moss",
    "ships",
    "bells",
    "wheat",
    "foxes",
    "snow",
    "silk",
    "coal",
    "frogs",
    "ink",
    "lamps",
    "pears",
    "reeds",
]


def separable_pairs(topics, offset=0):
    """A trivially separable preference: the chosen answer is a bulleted list, the rejected one a curt refusal."""
    rows = []
    for i, topic in enumerate(topics):
        prompt = [{"role": "user", "content": f"Tell me about {topic} (question {i + offset})."}]
        chosen = f"- {topic} are interesting\n- here are three facts about {topic}\n- I hope this helps"
        rejected = "No. I will not answer that."
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return rows


@pytest.fixture(scope="module")
def reward_run(ws, tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reward-run")
    data = write_records(separable_pairs(TOPICS), folder / "pairs.jsonl")
    out = folder / "rm"
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "reward",
            "--data",
            str(data),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--max-steps",
            "24",
            "--max-length",
            "128",
            "--batch-size",
            "4",
            "--lr",
            "2e-3",
            "--save-steps",
            "24",
            "--seed",
            "1",
            "--register-as",
            "rm-tiny",
        ]
    )
    return code, RunFolder(out)


def test_reward_model_ranks_held_out_pairs_of_a_separable_preference(reward_run, ws_store):
    code, run = reward_run
    assert code == 0, run.log_path.read_text() if run.log_path.exists() else ""
    assert run.status()["state"] == SUCCEEDED
    meta = json.loads((run.model_dir / "reward.json").read_text())
    held = meta["heldout"]
    assert held["pairs"] >= 6 and held["accuracy"] == 1.0
    assert held["calibration"] and meta["tie_margin"] >= 0
    card = run.card()
    assert card["reward"]["accuracy"] == 1.0 and card["reward"]["split"]["heldout_rows"] == held["pairs"]
    assert any("accuracy" in row for row in run.metrics())  # live plots read the same metrics stream
    versions = {v["name"]: v for v in ws_store.model_versions()}
    assert versions["rm-tiny"]["kind"] == "reward"  # registered as a judge version


def test_reward_model_scores_new_prompts(reward_run):
    from alignstudio.training.reward import load_reward_model, score_texts

    _, run = reward_run
    model, tokenizer, _ = load_reward_model(run.model_dir)
    new = separable_pairs(["cats", "boats", "tulips", "drums"], offset=100)
    prompts = [r["prompt"] for r in new]
    good = score_texts(model, tokenizer, prompts, [r["chosen"] for r in new])
    bad = score_texts(model, tokenizer, prompts, [r["rejected"] for r in new])
    assert all(g > b for g, b in zip(good, bad))


@pytest.mark.parametrize(
    "rows, message",
    [
        ([], "no labels"),
        (
            [
                {"prompt": "hi", "completion": "hello", "label": True},
                {"prompt": "yo", "completion": "hey", "label": True},
            ],
            "one class only",
        ),
    ],
)
def test_bad_reward_data_is_one_clear_error_and_writes_nothing(ws, tiny_model_dir, tmp_path, capsys, rows, message):
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rm-bad"
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "reward",
            "--data",
            str(data),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# -- judges ---------------------------------------------------------------------------------------------------

BULLETS = "- {t} are interesting\n- here are three facts about {t}\n- I hope this helps"
CURT = "No. I will not answer that."
PEOPLE_TOPICS = [
    "cats",
    "boats",
    "tulips",
    "drums",
    "bricks",
    "ferns",
    "geese",
    "harps",
    "jars",
    "kelp",
    "limes",
    "mules",
    "nets",
    "oaks",
    "pens",
    "quail",
    "rafts",
    "seals",
    "tents",
    "urns",
    "vines",
    "wasps",
    "yaks",
    "zinc",
]


def seed_people(store, prefer_bullets: bool, topics=PEOPLE_TOPICS, unlabeled: int = 3) -> None:
    """Pairs humans labeled (both sides shown first in turn) and a few unlabeled ones."""
    for i, topic in enumerate(topics):
        messages = [{"role": "user", "content": f"What about {topic}?"}]
        good, bad = BULLETS.format(t=topic), CURT
        a, b = (good, bad) if i % 2 == 0 else (bad, good)
        pid = store.add_pair(messages, a, b, model_a="m", model_b="m", prompt_set="people")
        bullets_side = "A" if i % 2 == 0 else "B"
        verdict = bullets_side if prefer_bullets else {"A": "B", "B": "A"}[bullets_side]
        store.add_preference(pid, verdict, annotator="alice", source="human", shown_left="A")
    for j in range(unlabeled):
        store.add_pair(
            [{"role": "user", "content": f"Unlabeled {j}?"}],
            BULLETS.format(t=f"u{j}"),
            CURT,
            model_a="m",
            model_b="m",
            prompt_set="people",
        )


def judge_events(store):
    return [lab for lab in store.labels("preference") if lab.source.startswith("judge:")]


def test_reward_judge_gives_the_same_verdict_in_both_orders(reward_run, ws, ws_store):
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.services.judges import JudgeInput, make_judge
    from alignstudio.services.judges.protocol import PairItem, judge_pairs, swap
    from alignstudio.services.sampling.generators import GeneratorPool

    judge = make_judge("reward", "rm-tiny", generators=GeneratorPool(ModelRegistry(ws, ws_store)))
    assert judge.source == "judge:reward-rm-tiny" and judge.tie_margin >= 0
    items = [
        PairItem(str(i), [{"role": "user", "content": f"About {t}?"}], BULLETS.format(t=t), CURT)
        for i, t in enumerate(PEOPLE_TOPICS[:6])
    ]
    items += [PairItem("x", [{"role": "user", "content": "About mud?"}], "Mud is wet.", "Mud is wet!")]
    run = judge_pairs(judge, items)
    assert all(j.consistent for j in run.judgments)
    assert [j.winner for j in run.judgments[:6]] == ["A"] * 6
    for item in items:
        forward = judge.judge(JudgeInput(item.messages, item.response_a, item.response_b)).winner
        backward = judge.judge(JudgeInput(item.messages, item.response_b, item.response_a)).winner
        assert forward == swap(backward)


@pytest.fixture(scope="module")
def dpo_run_dir(ws, tiny_model_dir, tmp_path_factory):
    from servers import ROOT

    out = tmp_path_factory.mktemp("dpo") / "dpo-run"
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "dpo",
            "--data",
            str(ROOT / "data" / "example_preferences.jsonl"),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--max-length",
            "64",
            "--batch-size",
            "2",
            "--lr",
            "1e-3",
        ]
    )
    assert code == 0
    return out


def test_implicit_judge_gives_the_same_verdict_in_both_orders(dpo_run_dir, ws, ws_store):
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.services.judges import JudgeInput, make_judge
    from alignstudio.services.judges.protocol import PairItem, judge_pairs, swap
    from alignstudio.services.sampling.generators import GeneratorPool

    judge = make_judge("implicit", str(dpo_run_dir), generators=GeneratorPool(ModelRegistry(ws, ws_store)))
    assert judge.beta == 0.1 and judge.kind == "implicit"
    items = [
        PairItem(str(i), [{"role": "user", "content": f"About {t}?"}], BULLETS.format(t=t), f"{t}? No idea.")
        for i, t in enumerate(PEOPLE_TOPICS[:5])
    ]
    run = judge_pairs(judge, items)
    assert all(j.consistent for j in run.judgments) and all(j.winner in ("A", "B", "tie") for j in run.judgments)
    for item in items:
        forward = judge.judge(JudgeInput(item.messages, item.response_a, item.response_b))
        backward = judge.judge(JudgeInput(item.messages, item.response_b, item.response_a))
        assert forward.winner == swap(backward.winner)
        assert forward.scores["margin"] == pytest.approx(-backward.scores["margin"])


def test_a_folder_that_is_not_a_reward_model_is_one_clear_error(ws, tiny_model_dir, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "hi", "response_a": "hello", "response_b": "hey"}) + "\n")
    out = tmp_path / "verdicts.jsonl"
    code = cli_main(
        [
            "--workspace",
            str(ws.root),
            "judge",
            "--pairs",
            str(pairs),
            "--judge",
            "reward",
            "--judge-model",
            str(tiny_model_dir),
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "is not a reward model" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _people_workspace(root, reward_run, prefer_bullets):
    people_ws = Workspace.open(root)
    people = Store(people_ws.db_path)
    people.register_model("rm-tiny", reward_run[1].model_dir, kind="reward")
    seed_people(people, prefer_bullets)
    return people_ws, people


def test_a_judge_at_chance_is_refused_through_the_cli_and_accepted_when_forced(reward_run, tmp_path, capsys):
    people_ws, people = _people_workspace(tmp_path / "ws", reward_run, prefer_bullets=False)
    base = ["--workspace", str(people_ws.root), "judge", "--store"]  # no --judge: the reward model is the default
    assert cli_main(base) == 2
    err = capsys.readouterr().err
    assert "at chance" in err and "kappa -1.00" in err and "on 24 held-out human labels" in err
    assert "--force-judge" in err and len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1
    assert judge_events(people) == []  # refused: nothing written

    out = tmp_path / "forced.jsonl"
    assert cli_main(base + ["--force-judge", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "WARNING" in printed and "at chance" in printed
    assert len(judge_events(people)) == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all("at chance" in row["judge_warning"] for row in rows)


def test_a_judge_that_agrees_with_people_is_trusted_and_too_few_labels_are_said(reward_run, tmp_path, capsys):
    people_ws, people = _people_workspace(tmp_path / "ws", reward_run, prefer_bullets=True)
    assert cli_main(["--workspace", str(people_ws.root), "judge", "--store"]) == 0
    printed = capsys.readouterr().out
    assert "trusted: agreement 100.0%, Cohen's kappa 1.00, position bias 50.0% on 24 held-out human labels" in printed

    few_ws = Workspace.open(tmp_path / "few")
    few = Store(few_ws.db_path)
    few.register_model("rm-tiny", reward_run[1].model_dir, kind="reward")
    seed_people(few, True, topics=PEOPLE_TOPICS[:5])
    assert cli_main(["--workspace", str(few_ws.root), "judge", "--store"]) == 0
    assert "too few human labels to measure it: 5 held-out human-labeled pairs, 20 needed" in capsys.readouterr().out


def test_no_judge_available_is_a_one_line_refusal(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ALIGNSTUDIO_JUDGE", raising=False)
    empty = Workspace.open(tmp_path / "ws")
    assert cli_main(["--workspace", str(empty.root), "judge", "--store"]) == 2
    err = capsys.readouterr().err
    assert "train a reward model" in err and "configure a server" in err and len(err.strip().splitlines()) == 1


def test_a_judge_at_chance_is_refused_through_the_http_api_and_forced_reports_say_so(
    reward_run, tiny_model_dir, tmp_path
):
    from gradio_client import Client
    from servers import running_app

    people_ws, people = _people_workspace(tmp_path / "ws", reward_run, prefer_bullets=False)
    people.close()
    judge = ["reward", "rm-tiny", "", "", ""]
    with running_app(people_ws.root, tiny_model_dir) as (_, url):
        client = Client(url, verbose=False)
        client.predict("unlabeled", False, 0.4, None, 4, *judge, False, api_name="/judge_store_pairs")
        assert judge_events(Store(people_ws.db_path)) == []  # refused: a warning, nothing written
        status, _ = client.predict("unlabeled", False, 0.4, None, 4, *judge, True, api_name="/judge_store_pairs")
    assert "WARNING" in status and "at chance" in status and "kappa -1.00" in status
    assert len(judge_events(Store(people_ws.db_path))) == 3


@pytest.mark.slow
def test_rounds_run_offline_with_the_reward_judge_and_retrain_it(reward_run, tiny_model_dir, tmp_path, monkeypatch):
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ALIGNSTUDIO_JUDGE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    people_ws, people = _people_workspace(tmp_path / "ws", reward_run, prefer_bullets=True)
    out = tmp_path / "rounds"
    code = cli_main(
        [
            "--workspace",
            str(people_ws.root),
            "rounds",
            "--judge",
            "reward",
            "--judge-model",
            "rm-tiny",
            "--rounds",
            "2",
            "--retrain-judge",
            "--judge-steps",
            "4",
            "--model",
            str(tiny_model_dir),
            "--pairs-per-round",
            "8",
            "--max-steps",
            "2",
            "--lr",
            "5e-5",
            "--max-length",
            "64",
            "--max-new-tokens",
            "16",
            "--eval-limit",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    summary = json.loads((out / "rounds.json").read_text())
    assert summary["state"] == "succeeded" and [r["round"] for r in summary["rounds"]] == [1, 2]
    assert summary["judge_trust"]["status"] == "trusted"
    first, second = summary["rounds"]
    assert first["judge"] == "judge:reward-rm-tiny"
    assert second["judge"].startswith("judge:reward-rounds-judge-1")  # retrained after round 1
    assert (out / "round-1" / "judge-data.jsonl").exists()
    report = json.loads((out / "round-2" / "eval.json").read_text())
    assert report["judge"]["kind"] == "reward"
    # the retrained judge trained on most human labels: what is left is too few to measure, and the report says so
    assert report["judge_trust"]["status"] == "unmeasured" and "too few human labels" in report["judge_trust"]["note"]


def test_the_labeling_queue_orders_pairs_by_the_reward_judge(reward_run, tmp_path, capsys):
    """`queue --judge reward`: the pair the reward model cannot tell apart (two list answers) goes first, the
    clear-cut ones (list vs refusal) after it."""
    from alignstudio.core.label_queue import LabelQueue

    people_ws, people = _people_workspace(tmp_path / "ws", reward_run, prefer_bullets=True)
    close = people.add_pair(
        [{"role": "user", "content": "Unlabeled close?"}],
        BULLETS.format(t="figs"),
        BULLETS.format(t="plums"),
        model_a="m",
        model_b="m",
        prompt_set="people",
    )
    assert cli_main(["--workspace", str(people_ws.root), "queue", "--judge", "reward", "--judge-model", "rm-tiny"]) == 0
    assert "queue: 4 pairs waiting" in capsys.readouterr().out
    first = LabelQueue(people).claim("bob")
    assert first is not None and first[0] == close
    assert cli_main(["--workspace", str(people_ws.root), "queue"]) == 2  # no policy and no judge: one clear error
    assert "--judge reward" in capsys.readouterr().err


def test_the_train_tab_shows_a_reward_runs_held_out_accuracy_and_calibration(reward_run, ws, ws_store):
    from alignstudio.services.container import Services
    from alignstudio.training.run_queue import RunManager
    from alignstudio.ui import train as train_tab

    services = Services.assemble(ws, ws_store, "smollm2", RunManager(ws, ws_store, autostart=False))
    view = train_tab.run_view(services, str(reward_run[1].path))
    assert "Reward model: held-out pairwise accuracy 1.00" in view[1] and "chance 0.50" in view[1]
    calibration = view[3]
    assert calibration["visible"] is True
    frame = calibration["value"]
    assert set(frame["series"]) == {"reward model", "perfectly calibrated"}
    points = frame[frame["series"] == "reward model"]
    assert len(points) >= 1 and points["observed"].between(0, 1).all()
    with pytest.raises(UserError, match="a reward model is a judge"):
        train_tab.evaluate_against_base(services, str(reward_run[1].path), "rules", False)


def test_the_implicit_judge_calibrates_its_tie_margin_on_the_runs_held_out_pairs(
    ws, ws_store, tiny_model_dir, tmp_path
):
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.services.judges import make_judge
    from alignstudio.services.judges.implicit import CALIBRATION_FILE
    from alignstudio.services.sampling.generators import GeneratorPool

    data = write_records(separable_pairs(TOPICS), tmp_path / "pairs.jsonl")
    out = tmp_path / "dpo-heldout"
    assert (
        cli_main(
            [
                "--workspace",
                str(ws.root),
                "train",
                "--method",
                "dpo",
                "--data",
                str(data),
                "--model",
                str(tiny_model_dir),
                "--out",
                str(out),
                "--max-steps",
                "12",
                "--max-length",
                "64",
                "--lr",
                "1e-3",
                "--compare-prompts",
                "0",
            ]
        )
        == 0
    )
    held = json.loads((out / "card.json").read_text())["dataset"]["heldout"]["heldout_rows"]
    judge = make_judge("implicit", str(out), generators=GeneratorPool(ModelRegistry(ws, ws_store)))
    calibration = json.loads((out / CALIBRATION_FILE).read_text())
    assert held >= 6 and calibration["heldout_pairs"] == held
    assert judge.tie_margin == calibration["tie_margin"] >= 0
    assert calibration["heldout_accuracy"] is not None
    again = make_judge("implicit", str(out), generators=GeneratorPool(ModelRegistry(ws, ws_store)))
    assert again.tie_margin == judge.tie_margin  # read back from the run folder, not recomputed
