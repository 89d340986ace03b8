"""Diagnostics over constructed metrics lists: each pattern found, healthy runs left alone."""

import math

from alignstudio.training.diagnostics import LN2, diagnose, expected_first_loss
from alignstudio.training.metrics import MetricsCallback, non_finite


def rows_from(**columns):
    n = len(next(iter(columns.values())))
    return [{"step": i + 1, **{k.replace("__", "/"): v[i] for k, v in columns.items()}} for i in range(n)]


def codes(rows, **kw):
    return {d.code for d in diagnose(rows, **kw)}


def healthy():
    return rows_from(
        loss=[LN2, 0.68, 0.66, 0.64, 0.62, 0.60],
        rewards__accuracies=[0.0, 0.5, 0.6, 0.65, 0.7, 0.75],
        rewards__chosen=[0.0, 0.02, 0.04, 0.05, 0.07, 0.08],
        rewards__rejected=[0.0, -0.01, -0.03, -0.05, -0.08, -0.1],
        rewards__margins=[0.0, 0.03, 0.07, 0.1, 0.15, 0.18],
    )


def test_healthy_run_has_no_findings():
    assert diagnose(healthy()) == []
    assert diagnose([]) == []


def test_first_loss_far_from_ln2_means_wrong_reference():
    rows = healthy()
    rows[0]["loss"] = 1.4
    found = diagnose(rows)
    assert found[0].code == "reference-mismatch" and found[0].severity == "error"
    assert "ln(2)" in found[0].meaning and found[0].advice


def test_first_loss_expectations_per_loss_type():
    assert math.isclose(expected_first_loss("dpo", ["sigmoid"]), LN2)
    assert expected_first_loss("dpo", ["hinge"]) == 1.0
    assert math.isclose(expected_first_loss("dpo", ["ipo"], beta=0.1), 25.0)
    assert expected_first_loss("kto", ["kto"]) == 0.5
    assert expected_first_loss("dpo", ["sigmoid", "sft"]) is None and expected_first_loss("orpo") is None
    rows = rows_from(loss=[25.0, 24.0])
    assert "reference-mismatch" not in codes(rows, loss_type=["ipo"], beta=0.1)
    assert "reference-mismatch" in codes(rows, loss_type=["sigmoid"])
    assert "reference-mismatch" not in codes(rows_from(loss=[10.8, 10.7]), method="orpo")


def test_resumed_metrics_without_step_one_are_not_judged():
    rows = healthy()[2:]
    rows[0]["loss"] = 3.0
    assert "reference-mismatch" not in codes(rows)


def test_accuracy_above_095_is_overfitting():
    rows = rows_from(loss=[LN2, 0.5, 0.3, 0.2, 0.1, 0.05], rewards__accuracies=[0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    found = {d.code: d for d in diagnose(rows)}
    assert "overfitting" in found and "fewer steps" in found["overfitting"].advice.lower()
    assert "overfitting" not in codes(rows_from(loss=[LN2, 0.6], rewards__accuracies=[1.0, 1.0]))  # too few points


def test_rewards_drifting_the_same_way():
    rows = rows_from(
        loss=[LN2, 0.69, 0.68, 0.67], rewards__chosen=[0.0, -0.3, -0.5, -0.8], rewards__rejected=[0.0, -0.4, -0.7, -1.0]
    )
    found = {d.code: d for d in diagnose(rows)}
    assert "same-direction" in found and "down" in found["same-direction"].title
    assert "beta" in found["same-direction"].advice and "sft" in found["same-direction"].advice
    up = rows_from(loss=[LN2, 0.69, 0.68], rewards__chosen=[0.0, 0.4, 0.6], rewards__rejected=[0.0, 0.3, 0.5])
    assert "same-direction" in codes(up)


def test_exploding_margins():
    rows = rows_from(loss=[LN2, 0.3, 0.1, 0.01], rewards__margins=[0.0, 1.0, 4.0, 12.0])
    found = {d.code: d for d in diagnose(rows)}
    assert "exploding-margins" in found and "ipo" in found["exploding-margins"].advice
    growing = rows_from(loss=[LN2, 0.6, 0.5, 0.4, 0.3], rewards__margins=[0.0, 0.5, 0.8, 1.5, 3.0])
    assert "exploding-margins" in codes(growing)


def test_likelihood_displacement():
    rows = rows_from(
        loss=[LN2, 0.68, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35],
        rewards__accuracies=[0.0, 0.5, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9],
        rewards__chosen=[0.0, -0.02, -0.05, -0.1, -0.2, -0.3, -0.4, -0.5],
        rewards__rejected=[0.0, -0.1, -0.2, -0.4, -0.6, -0.9, -1.2, -1.5],
    )
    found = {d.code: d for d in diagnose(rows)}
    assert "likelihood-displacement" in found
    assert "['sigmoid', 'sft']" in found["likelihood-displacement"].advice


def test_nan_is_an_error_first():
    rows = healthy() + [{"step": 7, "loss": None, "grad_norm": None}]
    found = diagnose(rows)
    assert found[0].code == "nan" and found[0].step == 7 and "learning rate" in found[0].advice
    assert non_finite({"loss": float("nan"), "grad_norm": 1.0}) == ["loss"]
    assert non_finite({"loss": None}) == ["loss"] and non_finite({"loss": 0.5}) == []


def test_not_learning_after_many_steps():
    rows = rows_from(loss=[LN2] * 24, rewards__accuracies=[0.5] * 24)
    assert "not-learning" in codes(rows)


def test_markdown_and_progress_line_are_readable():
    rows = rows_from(loss=[1.5, 0.6])
    text = diagnose(rows)[0].markdown()
    assert "First loss" in text and "Try:" in text
    line = MetricsCallback.progress_line(
        {"step": 3, "max_steps": 10, "loss": 0.69, "rewards/accuracies": 0.5, "tokens_per_s": 120.0, "eta_s": 12.0}
    )
    assert line.startswith("step 3/10") and "loss 0.69" in line and "eta 12s" in line
