"""The held-out split by prompt, the schedule chosen from the data, and the end-of-run verdict (pure functions)."""

import math
import random

import pytest

from alignstudio.core.errors import UserError
from alignstudio.training.diagnostics import LN2, diagnose
from alignstudio.training.schedule import MAX_EPOCHS, TARGET_STEPS, choose
from alignstudio.training.spec import RunSpec
from alignstudio.training.split import MIN_ROWS_FOR_SPLIT, prompt_key, split_by_prompt
from alignstudio.training.verdict import DIVERGED, FIT_UNCHECKED, LEARNED, MEMORIZED, NOTHING, judge_run


def _rows(prompts: int, per_prompt, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for p in range(prompts):
        messages = [{"role": "user", "content": f"question {p}"}]
        for k in range(per_prompt(p) if callable(per_prompt) else per_prompt):
            rows.append(
                {
                    "prompt": messages if p % 2 else f"question {p}",
                    "chosen": f"good {p}.{k} {rng.random()}",
                    "rejected": f"bad {p}.{k}",
                }
            )
    return rows


@pytest.mark.parametrize("prompts,per_prompt", [(50, 1), (20, 3), (30, lambda p: 1 + p % 5), (7, 4), (200, 2)])
def test_split_never_puts_a_prompt_on_both_sides(prompts, per_prompt):
    rows = _rows(prompts, per_prompt)
    split = split_by_prompt(rows, 0.2, seed=3)
    assert len(split.train) + len(split.heldout) == len(rows)
    train_keys = {prompt_key(r["prompt"]) for r in split.train}
    held_keys = {prompt_key(r["prompt"]) for r in split.heldout}
    assert not train_keys & held_keys
    if split.active:
        assert 6 <= len(split.heldout) <= max(6, round(0.2 * len(rows))) + max(2, round(0.2 * len(rows)) // 4)
        assert "held out" in split.note
    assert split_by_prompt(rows, 0.2, seed=3).heldout == split.heldout  # the same seed gives the same split


def test_split_is_off_with_too_little_data_and_says_why():
    split = split_by_prompt(_rows(MIN_ROWS_FOR_SPLIT - 1, 1), 0.2)
    assert not split.active and len(split.train) == MIN_ROWS_FOR_SPLIT - 1
    assert "fewer than" in split.note and "label more" in split.note
    one_prompt = split_by_prompt(_rows(1, 30), 0.2)  # every pair on one prompt: cannot split by prompt
    assert not one_prompt.active and "by prompt" in one_prompt.note
    assert "off" in split_by_prompt(_rows(40, 1), 0.0).note


def test_prompt_key_ignores_surrounding_whitespace_only():
    assert prompt_key(" hi ") == prompt_key("hi")
    assert prompt_key([{"role": "user", "content": "hi "}]) == prompt_key([{"role": "user", "content": "hi"}])
    assert prompt_key("hi") != prompt_key("hi there")


def _spec(**kw) -> RunSpec:
    return RunSpec(method=kw.pop("method", "dpo"), data="x.jsonl", **kw)


def test_schedule_repeats_a_small_set_and_trains_a_large_one_once():
    small = choose(_spec(), 40)
    assert small.batch_size == 4 and small.steps_per_epoch == 10
    assert small.num_train_epochs == math.ceil(TARGET_STEPS / 10) and small.total_steps == 60
    assert small.learning_rate == 2e-4 and small.warmup_steps == 6 and small.eval_steps == 5
    tiny = choose(_spec(), 16)
    assert tiny.batch_size == 2 and tiny.num_train_epochs == MAX_EPOCHS
    large = choose(_spec(), 400)
    assert large.num_train_epochs == 1 and large.total_steps == 100
    assert choose(_spec(full=True), 40).learning_rate == 5e-6
    assert choose(_spec(method="ipo"), 40).learning_rate < small.learning_rate
    assert choose(_spec(method="simpo"), 40).learning_rate == 1e-4
    assert "LoRA" in small.reasons["learning_rate"] and "updates" in small.reasons["num_train_epochs"]


def test_values_the_user_sets_override_the_schedule():
    mine = choose(_spec(learning_rate=3e-5, batch_size=3, num_train_epochs=2.0, warmup_steps=1), 40)
    assert (mine.learning_rate, mine.batch_size, mine.num_train_epochs, mine.warmup_steps) == (3e-5, 3, 2.0, 1)
    assert mine.total_steps == 2 * 14
    assert all(
        mine.reasons[k] == "you set it" for k in ("learning_rate", "batch_size", "num_train_epochs", "warmup_steps")
    )
    capped = choose(_spec(max_steps=7), 40)
    assert capped.total_steps == 7 and "max_steps" in capped.reasons["num_train_epochs"]


def test_spec_accepts_auto_and_refuses_bad_values():
    spec = _spec(learning_rate="", batch_size="auto")
    assert spec.learning_rate is None and spec.batch_size is None
    assert RunSpec.from_json(spec.to_json()) == spec
    for bad in (
        dict(heldout_fraction=0.7),
        dict(patience=0),
        dict(learning_rate=-1.0),
        dict(batch_size=0),
        dict(method="kto", batch_size=1),
        dict(compare_prompts=50),
    ):
        with pytest.raises(UserError):
            _spec(**bad)


def _train(losses, accs=None):
    return [
        {"step": i + 1, "loss": loss, **({"rewards/accuracies": accs[i]} if accs else {})}
        for i, loss in enumerate(losses)
    ]


def _eval(points):
    return [{"step": s, "eval_loss": loss, "eval_rewards/accuracies": acc} for s, loss, acc in points]


def test_a_run_at_ln2_learned_nothing_and_no_warning_sign_hides_it():
    flat = _train(
        [LN2, 0.6932, 0.6929, 0.6933, 0.6931, 0.693, 0.6931, 0.6932], [0.0, 0.5, 0.5, 0.25, 0.5, 0.5, 0.5, 0.5]
    )
    verdict = judge_run(flat)
    assert verdict.code == NOTHING and "Nothing learned" in verdict.headline
    assert any(d.code == "flat-loss" for d in diagnose(flat))
    held = judge_run(flat + _eval([(4, 0.693, 0.5), (8, 0.6925, 0.4)]), heldout_rows=10)
    assert held.code == NOTHING and held.heldout_accuracy == 0.4


def test_learned_memorized_diverged_and_unchecked_verdicts():
    falling = _train([LN2, 0.6, 0.5, 0.4, 0.35, 0.3], [0.0, 0.75, 0.75, 1.0, 0.75, 1.0])
    learned = judge_run(falling + _eval([(3, 0.62, 0.7), (6, 0.55, 0.8)]), heldout_rows=40)
    assert learned.code == LEARNED and learned.heldout_accuracy == 0.8 and "chance 0.50" in learned.headline
    assert learned.best_step == 6
    memorizing = _train([LN2, 0.4, 0.1, 0.02, 0.01, 0.01, 0.005, 0.004], [0, 0.75, 1, 1, 1, 1, 1, 1])
    rows = memorizing + _eval([(2, 0.6, 0.8), (4, 0.7, 0.7), (6, 0.9, 0.6), (8, 1.2, 0.6)])
    verdict = judge_run(rows, heldout_rows=40, best_step=2, stopped_early_at=8)
    assert verdict.code == MEMORIZED and verdict.best_step == 2 and "step 2" in verdict.detail
    assert any(d.code == "memorizing" for d in diagnose(rows))
    assert judge_run(falling, failed_nan=True).code == DIVERGED
    assert judge_run(_train([LN2, 2.0, 5.0, 9.0, 12.0])).code == DIVERGED
    unchecked = judge_run(falling)
    assert unchecked.code == FIT_UNCHECKED and "unmeasured" in unchecked.headline
