"""RunSpec: validated on creation, every field documented, JSON round-trip."""

import dataclasses
import json

import pytest

from alignstudio.core.errors import UserError
from alignstudio.training.spec import DPO_LOSS_TYPES, RunSpec, field_help


def spec(**kw):
    return RunSpec(**({"model": "smollm2", "data": "pairs.jsonl"} | kw))


def test_defaults_and_method_losses():
    s = spec()
    assert (s.method, s.loss_type, s.beta, s.full) == ("dpo", ["sigmoid"], 0.1, False)
    assert spec(method="kto").loss_type == ["kto"]
    assert spec(method="orpo").loss_type == ["orpo"] and spec(method="simpo").loss_type == ["simpo"]
    assert spec(method="IPO").method == "dpo" and spec(method="ipo").loss_type == ["ipo"]
    assert spec(loss_type="sigmoid, sft").loss_type == ["sigmoid", "sft"]


def test_every_field_has_help():
    helps = field_help()
    assert set(helps) == {f.name for f in dataclasses.fields(RunSpec)}
    assert all(len(text) > 10 for text in helps.values())


def test_json_round_trip(tmp_path):
    s = spec(
        method="dpo",
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, 0.5],
        beta=0.2,
        max_steps=7,
        lora_target_modules="q_proj, v_proj",
        register_as="mine",
    )
    again = RunSpec.from_json(s.to_json())
    assert again == s and again.lora_target_modules == ["q_proj", "v_proj"]
    assert RunSpec.load(s.save(tmp_path / "spec.json")) == s
    assert json.loads(s.to_json())["loss_weights"] == [1.0, 0.5]


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"method": "ppo"}, "method must be one of"),
        ({"loss_type": ["sigmoidd"]}, "not a DPO loss"),
        ({"loss_type": ["robust"], "label_smoothing": 0.5}, "label_smoothing"),
        ({"loss_type": ["exo_pair"]}, "exo_pair needs label_smoothing"),
        ({"method": "kto", "loss_type": ["sigmoid"]}, "KTO takes one loss_type"),
        ({"method": "kto", "batch_size": 1}, "KTO needs batch_size"),
        ({"method": "orpo", "loss_type": ["ipo"]}, "single loss"),
        ({"method": "ipo", "loss_type": ["hinge"]}, "means DPO with loss_type"),
        ({"beta": 0}, "beta must be > 0"),
        ({"beta": float("nan")}, "beta must be a finite number"),
        ({"learning_rate": -1}, "learning_rate"),
        ({"max_length": 8}, "max_length"),
        ({"batch_size": 1.5}, "batch_size must be a whole number"),
        ({"loss_weights": [1.0, 2.0]}, "loss_weights has 2 values"),
        ({"precision": "int4"}, "precision"),
        ({"data": ""}, "no training data"),
        ({"model": " "}, "no base model"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
    ],
)
def test_invalid_values_name_the_field(changes, words):
    with pytest.raises(UserError, match=words):
        spec(**changes)


def test_unknown_keys_and_bad_json_are_user_errors():
    with pytest.raises(UserError, match="unknown run setting"):
        RunSpec.from_dict({"model": "m", "data": "d", "betta": 0.1})
    with pytest.raises(UserError, match="not valid JSON"):
        RunSpec.from_json("{nope")


def test_max_steps_zero_means_epochs_and_all_dpo_losses_accepted():
    assert spec(max_steps=0).max_steps is None
    for loss in DPO_LOSS_TYPES:
        assert spec(loss_type=[loss], label_smoothing=0.1).loss_type == [loss]
    assert spec(beta=0.3).replace(beta=0.05).beta == 0.05


def test_a_reward_runs_label_shows_no_beta():
    """A reward model has no beta: the run list and the status line showed "beta=0.1" for reward runs."""
    assert "beta" not in spec(method="reward").label
    assert "beta=0.1" in spec(method="dpo").label
