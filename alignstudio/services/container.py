"""The services the app and the CLI share, built once at start-up and passed to every tab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.models import DEFAULT_MODEL
from ..core.registry import ModelRegistry
from ..core.store import Store
from ..core.workspace import Workspace
from .arena import ArenaService
from .data.service import DataService
from .evaluation.service import EvaluationService
from .labeling.feedback import FeedbackService
from .sampling import remote_names
from .sampling.generators import GeneratorPool
from .labeling import LabelingService
from .sampling.prefetch import FeedManager
from .sampling.prompt_sets import PromptSets


@dataclass
class Services:
    workspace: Workspace
    store: Store
    registry: ModelRegistry
    prompt_sets: PromptSets
    generators: GeneratorPool
    feeds: FeedManager
    labeling: LabelingService
    feedback: FeedbackService
    default_model: str
    data: DataService
    arena: ArenaService
    evaluation: EvaluationService
    runs: Any  # training.run_queue.RunManager

    @classmethod
    def build(cls, workspace: Workspace, default_model: str = DEFAULT_MODEL, prefetch_depth: int = 3) -> "Services":
        store = Store(workspace.db_path)
        default_model = ModelRegistry(workspace, store).resolve(default_model).name  # fail fast; converts the
        # embedded model once
        from ..training.run_queue import RunManager

        return cls.assemble(workspace, store, default_model, RunManager(workspace, store), prefetch_depth)

    @classmethod
    def assemble(cls, workspace: Workspace, store: Store, default_model: str, runs, prefetch_depth: int = 3,
                 ) -> "Services":
        """Every service over one store, with `runs` as the training queue (tests pass a stand-in worker's)."""
        registry = ModelRegistry(workspace, store)
        prompt_sets = PromptSets(workspace)
        generators = GeneratorPool(registry)
        feeds = FeedManager(generators, prompt_sets, depth=prefetch_depth)
        return cls(workspace, store, registry, prompt_sets, generators, feeds, LabelingService(store, feeds),
                   FeedbackService(store, feeds), default_model, DataService(store, workspace, prompt_sets),
                   ArenaService(store), EvaluationService(store, workspace, generators, prompt_sets, default_model),
                   runs)

    def model_names(self) -> list[str]:
        """Every model a list in the app offers: the embedded and local ones, then trained runs."""
        return self.registry.names()

    def generator_names(self) -> list[str]:
        """Every model the sampling lists (Label, Feedback, Arena) offer: the local ones, then the remote models
        the configured endpoints list (`ENDPOINT:MODEL`). Training and the other lists take local models only."""
        local = self.model_names()
        return local + [name for name in remote_names.offered() if name not in local]

    def newest_trained(self) -> str | None:
        """The newest trained model's name, or None before any training."""
        return self.registry.newest_trained()

    def newest_model(self) -> str:
        """The newest trained model, or the default (SFT) model before any training."""
        return self.newest_trained() or self.default_model

    def close(self) -> None:
        self.feeds.stop()
