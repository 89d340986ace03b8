"""The reward judge: a reward model trained from the store's labels (`alignstudio train --method reward`).

Each response gets a score from the Bradley-Terry model, scored in batches; the verdict compares the two scores,
so it is the same in both orders by construction, and a difference within the tie margin calibrated on the
run's held-out pairs is a tie. `--judge-model` names a registered reward version, a run folder or a model folder;
empty = the newest registered reward model. Loading and scoring are `training.reward`'s, shared with the run's
held-out measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ...core import access
from ...core.errors import UserError
from ...training.reward import REWARD_KIND, load_reward_model, newest_reward_model, score_texts
from .implicit import ScoreJudge
from .refusals import TRAIN_REWARD_IN_APP, Refusal

NO_REWARD_MODEL = (
    "no trained reward model yet: label at least 50 pairs, export a snapshot and run `alignstudio "
    "train --method reward --data SNAPSHOT`"
)
NO_REWARD_MODEL_IN_APP = (
    f"No trained reward model yet. To get one: label at least 50 pairs, then {TRAIN_REWARD_IN_APP}."
)


class RewardJudge(ScoreJudge):
    kind = "reward"

    def __init__(
        self,
        folder: str | Path,
        name: str = "",
        criteria: Sequence[str] | None = None,
        *,
        tie_margin: float | None = None,
        max_length: int | None = None,
    ):
        super().__init__(criteria)
        self.folder = Path(folder)
        self.scorer, self.tokenizer, self.meta = load_reward_model(self.folder)
        self.model = name or str(self.folder)
        self.tie_margin = float(self.meta.get("tie_margin") or 0.0) if tie_margin is None else float(tie_margin)
        self.max_length = int(max_length or self.meta.get("max_length") or 1024)
        self.trained_prompts: set[str] = set(self.meta.get("trained_prompts") or [])

    def _settings(self) -> dict:
        return {"tie_margin": self.tie_margin, "data": self.meta.get("data_fingerprint"), "run": self.meta.get("run")}

    def describe(self) -> dict:
        held = self.meta.get("heldout") or {}
        return super().describe() | {
            "tie_margin": self.tie_margin,
            "heldout_accuracy": held.get("accuracy"),
            "heldout_pairs": held.get("pairs"),
        }

    def score(self, prompts, responses) -> list[float]:
        return score_texts(self.scorer, self.tokenizer, prompts, responses, max_length=self.max_length)


def reward_model_folder(model: str | None, registry) -> tuple[Path, str]:
    """(folder, name) of the reward model `model` names (a version, a run folder, a model folder) or the newest."""
    key = (model or "").strip()
    if registry is not None:
        if not key:
            key = newest_reward_model(registry.store) or ""
            if not key:
                raise Refusal(NO_REWARD_MODEL, app=NO_REWARD_MODEL_IN_APP)
        for version in registry.store.model_versions():
            if version["name"] == key:
                if version["kind"] != REWARD_KIND:
                    wrong = f"{key} is a {version['kind']} model, not a reward model"
                    raise Refusal(
                        f"{wrong}; train one with `alignstudio train --method reward`",
                        app=f"{wrong}. To get one: {TRAIN_REWARD_IN_APP}.",
                    )
                return Path(version["path"]), key
    if not key:
        raise Refusal(NO_REWARD_MODEL, app=NO_REWARD_MODEL_IN_APP)
    path = Path(key).expanduser()
    access.check_typed_path(path)  # in the app: only a folder inside the allowed ones, before looking at it
    if (
        (path / "model").is_dir()
        and not (path / "config.json").exists()
        and not (path / "adapter_config.json").exists()
    ):
        path = path / "model"
    if not path.is_dir():
        raise UserError(f"unknown reward model {key!r}: give a registered reward version or a reward model folder")
    return path.resolve(), key
