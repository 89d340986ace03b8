"""Training keeps a ranking's pairs in one optimizer step: the rows ordered group by group, read in that order."""

from collections import Counter

import pytest

from alignstudio.services.data.snapshots import export_snapshot
from alignstudio.training.group_batches import grouped_order
from alignstudio.training.method import Method
from alignstudio.training.spec import RunSpec
from alignstudio.training.trainer_setup import make_config

MSG = [{"role": "user", "content": "Name a colour."}]


def _steps(order: list[int], groups: list, step_rows: int) -> dict:
    """Each group's steps: the step indices its rows land in."""
    steps = {}
    for place, row in enumerate(order):
        if groups[row]:
            steps.setdefault(groups[row], set()).add(place // step_rows)
    return steps


@pytest.mark.parametrize("step_rows", [6, 8, 12, 4])
def test_every_group_sits_in_as_few_steps_as_its_size_allows(step_rows):
    # rankings of 4 and 3 answers (6 and 3 pairs) and plain pairs, enough of them to fill every gap
    groups = [f"g{i // 6}" for i in range(30)] + [f"h{i // 3}" for i in range(9)] + [None] * 30
    order = grouped_order(groups, step_rows, seed=3)
    assert sorted(order) == list(range(len(groups)))  # every row once
    for group, steps in _steps(order, groups, step_rows).items():
        size = Counter(groups)[group]
        assert len(steps) == -(-size // step_rows), (group, steps)  # one step when it fits, else the fewest
    assert grouped_order(groups, step_rows, seed=3) == order and grouped_order(groups, step_rows, seed=4) != order


def test_a_dpo_run_on_ranked_data_reads_the_groups_in_order(store, workspace, tmp_path):
    for n in range(4):
        texts = [f"Colour {n}-{i}: {'blue ' * i}" for i in range(4)]
        gens = store.add_answers(
            [{"role": "user", "content": f"Name colour {n}."}], texts, models=["m"] * 4, params=[{}] * 4
        )
        store.add_ranking(gens, annotator="ann")
    for n in range(3):
        pair = store.add_pair([{"role": "user", "content": f"Q{n}?"}], f"yes {n}", f"no {n}", model_a="m", model_b="m")
        store.add_preference(pair, "A", annotator="ann")
    snapshot = export_snapshot(store, workspace, "dpo")
    spec = RunSpec(method="dpo", data=str(snapshot.path), batch_size=3, grad_accum=2, heldout_fraction=0.0, seed=1)
    method = Method()
    _, _, train_set, _ = method.data(spec)
    assert method.grouped and "group_id" not in train_set.column_names and len(train_set) == 27
    prompts = [row["prompt"][0]["content"] for row in train_set]
    for step in range(0, 24, 6):  # four rankings of six pairs: one per step of 3 x 2 rows, then the plain pairs
        assert len(set(prompts[step : step + 6])) == 1, prompts
    config = method.config(spec, _run(tmp_path), _schedule(spec, len(train_set)), heldout=False)
    assert config.train_sampling_strategy == "sequential"

    method = Method()  # the setting off: the trainer's own random order, and no group column
    _, _, train_set, _ = method.data(spec.replace(group_batches=False))
    assert not method.grouped and "group_id" not in train_set.column_names
    assert make_config(spec, _run(tmp_path)).train_sampling_strategy == "random"


def _run(tmp_path):
    from alignstudio.training.run_folder import RunFolder

    return RunFolder(tmp_path / "run")


def _schedule(spec, rows):
    from alignstudio.training.schedule import choose

    return choose(spec, rows)
