"""One code path per concept (issue 35): the training callback stops on the metrics `non_finite` names."""

from types import SimpleNamespace

from transformers import TrainerControl

from alignstudio.training.metrics import WATCHED, MetricsCallback, non_finite


def test_the_metrics_callback_stops_on_exactly_what_non_finite_names(tmp_path):
    """A NaN or infinite watched metric stops the run without a checkpoint; an unwatched one (the learning
    rate) is written as null but stops nothing. The callback's list is `non_finite`'s."""
    callback = MetricsCallback(tmp_path / "metrics.jsonl", echo=False)
    state = SimpleNamespace(global_step=3, epoch=1.0, max_steps=10)
    calm = TrainerControl()
    callback.on_log(None, state, calm, logs={"loss": 0.5, "learning_rate": float("inf")})
    assert not calm.should_training_stop and callback.nan_keys == [] and callback.last["learning_rate"] is None
    logs = {"loss": 0.7, "grad_norm": float("nan"), "logps/chosen": float("-inf"), "learning_rate": 1e-4}
    control = TrainerControl(should_save=True)
    callback.on_log(None, state, control, logs=logs)
    assert callback.nan_keys == non_finite(callback.last) == ["grad_norm", "logps/chosen"]
    assert set(callback.nan_keys) <= set(WATCHED)
    assert control.should_training_stop and not control.should_save and callback.nan_at == 3
