"""Keep a ranking's pairs in one optimizer step: rows ordered so each group fills consecutive slots of a step.

InstructGPT kept all comparisons of one prompt in one batch element, as its pairs share answers and training on
them in different steps overfits. TRL's trainers take their order from `TrainingArguments.train_sampling_strategy`
("sequential": the dataset's order), so the rows are ordered here, seeded and reshuffled as whole groups, and the
trainer reads them in that order. A step (per-device batch x gradient accumulation x processes) is filled group
by group; a gap a group does not fit is filled with ungrouped rows, or by the next group's first rows when none
is left, and a group larger than a step spans as few steps as it can.
"""

from __future__ import annotations

import random
from collections import defaultdict

GROUP_COLUMN = "group_id"


def has_groups(dataset) -> bool:
    return GROUP_COLUMN in dataset.column_names and any(dataset[GROUP_COLUMN])


def grouped_order(groups: list[str | None], step_rows: int, seed: int) -> list[int]:
    """Row indices in training order: every group's rows contiguous, inside one step where it fits."""
    rng = random.Random(seed)
    members: dict[str, list[int]] = defaultdict(list)
    singles: list[int] = []
    for i, group in enumerate(groups):
        (members[group] if group else singles).append(i)
    units = list(members.values())
    rng.shuffle(units)
    rng.shuffle(singles)
    step_rows = max(1, step_rows)
    order: list[int] = []
    while units:
        room = step_rows - len(order) % step_rows
        fits = next((n for n, unit in enumerate(units) if len(unit) <= room), None)
        if fits is not None:
            order.extend(units.pop(fits))
        elif singles and room < step_rows:
            order.extend(singles[:room])  # the gap no group fits: ungrouped rows, the next group starts a step
            del singles[:room]
        else:  # nothing else fits the gap: the group starts here and goes on in the next step
            order.extend(units.pop(0))
    return order + singles


def without_groups(dataset):
    """The dataset without its group column (the trainers' collators take only their own columns)."""
    if dataset is None or GROUP_COLUMN not in dataset.column_names:
        return dataset
    return dataset.remove_columns(GROUP_COLUMN)


def arrange(spec, train_set, eval_set, step_rows: int):
    """(training set, held-out set, whether the training order is the groups' own): with `spec.group_batches` on
    and ranked pairs in the data, the training rows in `grouped_order` (the same order every epoch, as the
    trainer then reads them in order); else as they were. The group column is dropped from both."""
    grouped = bool(getattr(spec, "group_batches", False)) and has_groups(train_set)
    if grouped:
        train_set = train_set.select(grouped_order(train_set[GROUP_COLUMN], step_rows, spec.seed))
        print(f"groups: the pairs of each ranking kept together, {step_rows} rows a step", flush=True)
    return without_groups(train_set), without_groups(eval_set), grouped
