"""The end-of-run verdict's uncertainty: held-out accuracy with its Wilson interval, "learned" only beyond chance
at the count of held-out pairs, "too few held-out pairs to tell" otherwise, and the same rule for reward runs
(a held-out loss that stayed at ln 2 is never "learned"). Pure functions over metrics rows."""

from statsmodels.stats.proportion import proportion_confint

from alignstudio.training.diagnostics import LN2
from alignstudio.training.verdict import LEARNED, NOTHING, TOO_FEW, judge_reward, judge_run, pairs_needed


def _rows(final_accuracy, losses=(LN2, 0.6, 0.5, 0.4, 0.35, 0.3)):
    train = [{"step": i + 1, "loss": v, "rewards/accuracies": 0.75} for i, v in enumerate(losses)]
    held = [
        {"step": 3, "eval_loss": 0.62, "eval_rewards/accuracies": 0.7},
        {"step": 6, "eval_loss": 0.55, "eval_rewards/accuracies": final_accuracy},
    ]
    return train + held


def test_six_heldout_pairs_show_their_interval_and_learned_needs_it_above_chance():
    # 6/6: the Wilson interval is [0.61, 1.00]: above chance, so "learned", and the interval is in the text
    all_right = judge_run(_rows(1.0), heldout_rows=6)
    low, high = proportion_confint(6, 6, method="wilson")
    assert (all_right.interval_low, all_right.interval_high) == (round(low, 4), round(high, 4))
    assert all_right.code == LEARNED and "95% interval 0.61-1.00" in all_right.markdown()
    # 5/6 = 0.83 looks like learning but its interval [0.44, 0.97] holds chance: too few to tell, with figures
    five = judge_run(_rows(5 / 6), heldout_rows=6)
    assert five.code == TOO_FEW and five.interval_low < 0.5 < five.interval_high
    text = five.markdown()
    assert "Too few held-out pairs to tell" in text and "0.83 on 6 held-out pairs" in text
    assert "95% interval 0.44-0.97" in text and f"about {pairs_needed(5 / 6)} held-out pairs" in text


def test_the_same_accuracy_on_enough_pairs_is_learned():
    # 0.8 on 10 pairs: interval [0.49, 0.94] reaches chance; on 40 pairs: [0.65, 0.90]
    assert judge_run(_rows(0.8), heldout_rows=10).code == TOO_FEW
    enough = judge_run(_rows(0.8), heldout_rows=40)
    assert enough.code == LEARNED and "0.80 on 40 held-out pairs (95% interval 0.65-0.90" in enough.headline
    assert judge_run(_rows(0.5), heldout_rows=40).code == NOTHING  # at chance, whatever the count


def test_a_reward_run_at_ln2_or_on_few_pairs_is_not_learned():
    train = [{"step": s, "loss": 0.69} for s in range(1, 9)]
    flat = train + [{"step": s, "eval_loss": v, "eval_accuracy": 0.6} for s, v in ((4, 0.6935), (8, 0.6928))]
    verdict = judge_reward(flat, 4 / 6, 6)  # the run: 0.67 on 6 pairs, held-out loss flat near 0.69
    assert verdict.code == NOTHING and "ln 2" in verdict.headline and "95% interval 0.30-0.90" in verdict.headline
    moving = train + [{"step": 4, "eval_loss": 0.6}, {"step": 8, "eval_loss": 0.45}]
    assert judge_reward(moving, 4 / 6, 6).code == TOO_FEW
    learned = judge_reward(moving, 0.8, 40)
    assert learned.code == LEARNED and learned.interval_low > 0.5
    assert judge_reward(moving, None, 0).code != LEARNED  # no held-out split: unmeasured


def test_verdicts_and_diagnostics_read_as_text_without_emoji():
    from alignstudio.training.diagnostics import diagnose

    flat = [{"step": s, "loss": LN2, "rewards/accuracies": 0.5} for s in range(1, 9)]
    texts = [judge_run(_rows(5 / 6), heldout_rows=6).markdown(), judge_run(flat).markdown()]
    texts += [d.markdown() for d in diagnose(flat)]
    assert len(texts) > 1 and all(ch.isascii() or ch in "—–·" for text in texts for ch in text), texts


def test_a_run_that_tells_pairs_apart_but_writes_as_before_says_so():
    from alignstudio.training.generation_check import style
    from alignstudio.training.verdict import PAIRS_ONLY

    rows = _rows(0.8)
    rows[-1]["eval_rewards/margins"] = 2.0  # the held-out pairs are far apart in implicit reward
    same = {"prompts": 3, "judge": "implicit", "implicit_margin": 0.1, "trained_preferred": 2, "scored": 3}
    same |= {"base_words": 76.0, "trained_words": 72.0, "base_list_items": 0, "trained_list_items": 0}
    same |= {"base_markdown": 0, "trained_markdown": 0}
    verdict = judge_run(rows, heldout_rows=40, generation=same)
    assert verdict.code == PAIRS_ONLY
    assert verdict.headline.startswith("Learned to tell pairs apart, generation barely moved")
    assert "72 words against the base's 76" in verdict.headline and "0.100" in verdict.headline
    assert "lower beta" in verdict.detail
    # the trained answers gained as much as the pairs are apart, or got much shorter: generation moved
    assert judge_run(rows, heldout_rows=40, generation=same | {"implicit_margin": 1.5}).code == LEARNED
    assert judge_run(rows, heldout_rows=40, generation=same | {"trained_words": 25.0}).code == LEARNED
    # one compared answer is no evidence either way
    assert judge_run(rows, heldout_rows=40, generation=same | {"prompts": 1, "scored": 1}).code == LEARNED
    # without an implicit reward (ORPO, SimPO), style alone: same length, same lists -> barely moved
    by_style = {k: v for k, v in same.items() if k not in ("implicit_margin", "scored")} | {"judge": "style"}
    assert judge_run(rows, heldout_rows=40, generation=by_style).code == PAIRS_ONLY
    assert judge_run(rows, heldout_rows=40, generation=by_style | {"trained_list_items": 4}).code == LEARNED
    # a reward model trained on the same labels is the judge where there is one: it preferred 1 of 3 trained answers
    by_reward = by_style | {"judge": "reward", "reward_margin": -0.2, "trained_preferred": 1, "scored": 3}
    unmoved = judge_run(rows, heldout_rows=40, generation=by_reward)
    assert unmoved.code == PAIRS_ONLY and "higher on only 1 of 3 held-out prompts" in unmoved.headline
    assert judge_run(rows, heldout_rows=40, generation=by_reward | {"trained_preferred": 3}).code == LEARNED
    assert style("# Title\n- one\n- two\n**bold** text") == {"words": 8, "list_items": 2, "markdown": 3}


def test_drift_past_the_budget_from_the_first_evaluation_keeps_no_checkpoint_within_it():
    from alignstudio.training.verdict import OVER_OPTIMIZED

    rows = _rows(1.0)
    for row, drift in zip(rows[-2:], (0.05, 0.09)):
        row["eval_drift"] = drift
    verdict = judge_run(rows, heldout_rows=40, drift_budget=0.03, stopped_on_drift_at=6)
    assert verdict.code == OVER_OPTIMIZED and verdict.headline.startswith("Over-optimized")
    assert "no held-out checkpoint stayed within it" in verdict.headline and "+9.0%" in verdict.headline
    assert "The drift budget ended the run at step 6" in verdict.detail
    # the same rows without a budget: drift is not judged
    assert judge_run(rows, heldout_rows=40).code == LEARNED
