"""Is the judge independent of the model it evaluates? A model judged by itself proves nothing.

A DPO or KTO run's implicit reward prefers what its own policy now writes: judging that policy with it is a
model judged by itself, and the win says nothing about the labels. `check` finds the run behind the evaluated
model and the data behind the judge, and says one of:

- `self`: the judge is the evaluated run's own implicit reward. The evaluation refuses it (unless forced; the
  report then says SELF-JUDGED at its top);
- `shared data`: the judge (a reward model, or another run's implicit reward) trained on prompts the evaluated
  run trained on. Allowed, with a loud line in the report: the judge shares the model's view of those labels;
- `independent`, or `unknown` when the evaluated model is no training run (a base or a remote model).

`run_trained_prompts` is also what keeps a run's training prompts out of its implicit judge's agreement with
people (`trust.measure_judge`): the run's training split, read as the worker read it (a file or a snapshot
folder), by prompt digest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ...core.errors import UserError

SELF, SHARED, INDEPENDENT, UNKNOWN = "self", "shared data", "independent", "unknown"


@dataclass
class Independence:
    """How the judge relates to the evaluated model. `shared_prompts`: training prompts they have in common."""

    status: str
    note: str
    run: str | None = None  # the evaluated model's run folder name, when it is a run's
    shared_prompts: int = 0
    forced: bool = False

    @property
    def warning(self) -> str | None:
        if self.status == SELF:
            return f"SELF-JUDGED: {self.note}. The result is not evidence that the model improved" + (
                " (used by force)" if self.forced else ""
            )
        if self.status == SHARED:
            return f"NOT INDEPENDENT: {self.note}. The win rate may overstate the improvement"
        return None

    def to_dict(self) -> dict:
        return asdict(self) | {"warning": self.warning}


def run_folder_of(registry, model: str) -> Path | None:
    """The training run behind a model name (a version with a run, a run folder or its model/), else None."""
    from .implicit import find_run_folder

    if registry is None or not (model or "").strip():
        return None
    folder = find_run_folder(registry, model.strip())
    if folder is None:
        try:
            resolved = registry.resolve(model).folder
        except UserError:
            return None  # a remote or unknown model: no run
        if resolved.name == "model" and (resolved.parent / "spec.json").is_file():
            folder = resolved.parent
    return Path(folder).resolve() if folder is not None else None


def run_trained_prompts(folder: Path, spec=None) -> set[str]:
    """Digests of the prompts a run trained on: its data's training split (the held-out prompts excluded), as
    the worker split it. Empty when the data is gone or unreadable."""
    from ...training.data import load_training_data
    from ...training.reward import prompt_digest
    from ...training.spec import RunSpec
    from ...training.split import split_by_prompt

    spec = spec or RunSpec.load(Path(folder) / "spec.json")
    if not spec.data or not Path(spec.data).exists():
        return set()
    try:
        rows = load_training_data(spec.data, spec.method).dataset.to_list()
    except UserError:
        return set()
    return {prompt_digest(r.get("prompt")) for r in split_by_prompt(rows, spec.heldout_fraction, spec.seed).train}


def check(judge, registry, model: str) -> Independence:
    """Whether `judge` may judge `model` (see the module docstring)."""
    folder = run_folder_of(registry, model)
    if folder is None:
        return Independence(UNKNOWN, f"{model} is not a training run's model")
    judge_run = getattr(getattr(judge, "reward", None), "folder", None)  # an implicit judge's run
    if judge_run is not None and Path(judge_run).resolve() == folder:
        return Independence(
            SELF,
            f"the judge {judge.name} is the implicit reward of run {folder.name}, the very model being evaluated "
            "(a model judged by itself prefers what it now writes)",
            folder.name,
        )
    judged_by = set(getattr(judge, "trained_prompts", set()) or ())
    shared = len(judged_by & run_trained_prompts(folder)) if judged_by else 0
    if shared:
        return Independence(
            SHARED,
            f"the judge {judge.name} trained on {shared} of the prompts run {folder.name} trained on",
            folder.name,
            shared,
        )
    return Independence(INDEPENDENT, f"the judge trained on none of run {folder.name}'s prompts", folder.name)


def vet_independence(judge, registry, model: str, *, force: bool = False) -> Independence:
    """`check`, refusing a model judged by itself unless `force` (its report then says SELF-JUDGED)."""
    from .refusals import Refusal, field_label

    found = check(judge, registry, model)
    if found.status == SELF:
        if not force:
            refused = f"Refused: {found.note}; its verdict would say nothing about your labels"
            raise Refusal(
                f"{refused}. Judge it with a reward model trained from your labels (--judge reward) or another "
                "run's implicit reward; --force-judge runs it anyway and the report says SELF-JUDGED",
                app=f'{refused}. Choose another judge in "{field_label("kind")}": a reward model trained from '
                f'your labels, or another run\'s implicit reward. Ticking "{field_label("force")}" runs it anyway '
                "and the report says SELF-JUDGED.",
            )
        found.forced = True
    return found
