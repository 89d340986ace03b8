"""The services the app and the CLI share, built once at start-up and passed to every tab."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.registry import ModelRegistry
from ..core.store import Store
from ..core.workspace import Workspace
from .labeling.feedback import FeedbackService
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
    runs: Any = None  # training.run_queue.RunManager (set in build)

    @classmethod
    def build(cls, workspace: Workspace, default_model: str = "smollm2", prefetch_depth: int = 3) -> "Services":
        store = Store(workspace.db_path)
        registry = ModelRegistry(workspace, store)
        default_model = registry.resolve(default_model).name  # fail fast; converts the embedded model once
        prompt_sets = PromptSets(workspace)
        generators = GeneratorPool(registry)
        feeds = FeedManager(generators, prompt_sets, depth=prefetch_depth)
        services = cls(workspace, store, registry, prompt_sets, generators, feeds, LabelingService(store, feeds),
                       FeedbackService(store, feeds), default_model)
        from ..training.run_queue import RunManager

        services.runs = RunManager(workspace, store)
        return services

    def close(self) -> None:
        self.feeds.stop()
