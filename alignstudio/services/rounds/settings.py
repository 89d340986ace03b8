"""What a series of rounds is asked to do: `RoundsSettings`, one field per choice with its default, help, form
label and range (the `rounds` command's flags and the Rounds tab's controls are built from it). Each round's
training run takes beta, steps, learning rate and batch size with `RunSpec`'s defaults and help."""

from __future__ import annotations

from dataclasses import dataclass

from ...core.errors import UserError
from ...core.settings import setting
from ...core.settings import settings as settings_of
from ...training.spec import RunSpec
from ...training.trackers import check_trackers


def _run(name: str, **describe):
    """A field a round's training run takes as it is: RunSpec's default and help."""
    return setting(RunSpec.default(name), RunSpec.help(name), **describe)


@dataclass(frozen=True)
class RoundsSettings:
    rounds: int = setting(
        2, "rounds to run, each training from the policy the one before it trained", label="Rounds", minimum=1
    )
    pairs_per_round: int = setting(
        16, "pairs sampled from the current policy in each round", label="Pairs per round", minimum=2
    )
    judge: str = setting(
        "",
        "reward | implicit | rules | local | openai | anthropic | vllm | ollama; empty: the "
        "newest trained reward model (offline), else the server in ALIGNSTUDIO_JUDGE",
        label="Judge",
    )
    judge_model: str | None = setting(None, "reward: a reward version or folder (default the newest)")
    force_judge: bool = setting(
        False,
        "use the judge even if it is at chance against the human labels (reports say so)",
        label="Use the judge even if it is at chance against people (reports say so)",
    )
    retrain_judge: bool = setting(
        False,
        "retrain the reward judge after each round on the human labels plus the "
        "judged pairs (off by default: a judge trained on its own verdicts "
        "confirms its own mistakes)",
        label="Retrain the reward judge each round (off: it would learn its own verdicts)",
    )
    judge_steps: int = setting(40, "training steps of each retrained reward judge", minimum=1)
    beta: float = _run("beta")
    max_steps: int | None = _run(
        "max_steps", label="Training steps per round (empty = chosen from the pairs)", empty="chosen from the pairs"
    )
    learning_rate: float | None = _run("learning_rate")
    max_length: int = setting(
        256,
        "maximum tokens of prompt + answer in each round's training (answers are "
        "short, so shorter than a training run's default)",
        minimum=16,
    )
    batch_size: int | None = _run("batch_size")
    max_new_tokens: int = setting(96, "tokens per sampled answer", minimum=1)
    eval_limit: int = setting(16, "held-out prompts per evaluation", label="Evaluation prompts", minimum=1)
    seed: int = setting(0, "seed of sampling, training and evaluation")
    report_to: list[str] = setting(
        [], "experiment trackers for each round's training run: tensorboard, wandb, mlflow, trackio"
    )

    def __post_init__(self):
        if (
            self.rounds < 1
            or self.pairs_per_round < 2
            or (self.max_steps is not None and self.max_steps < 1)
            or self.eval_limit < 1
        ):
            raise UserError("rounds, max_steps and eval_limit must be at least 1, pairs_per_round at least 2")
        if self.beta <= 0:
            raise UserError("beta must be positive")
        object.__setattr__(self, "report_to", check_trackers(self.report_to))  # a frozen dataclass


FLAGS = {"learning_rate": "--lr"}  # a field's flag where it is not --name-with-dashes


def flag_of(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def as_arguments(settings: RoundsSettings) -> list[str]:
    """The `alignstudio rounds` arguments that give `settings` (values left at their default are left out)."""
    defaults = {name: s.default for name, s in settings_of(RoundsSettings).items()}
    args = []
    for name, value in vars(settings).items():
        if value is None or value == defaults[name]:
            continue
        if isinstance(value, bool):
            args.append(flag_of(name))
        elif isinstance(value, list):
            args += [flag_of(name), *map(str, value)]
        else:
            args += [flag_of(name), str(value)]
    return args
