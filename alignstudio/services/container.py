"""The services the app and the CLI share: built once at start-up and passed to every tab (`Services.build`), and
by each CLI command (`Services.open`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.models import DEFAULT_MODEL
from ..core.registry import ModelRegistry
from ..core.store import Store
from ..core.workspace import Workspace
from .arena import ArenaService
from .data.service import DataService
from .evaluation.service import EvaluationService
from .labeling import LabelingService
from .labeling.feedback import FeedbackService
from .labeling.ranking import RankingService
from .live.service import LiveService
from .rounds.folder import RoundsService
from .sampling import remote_names
from .sampling.answers import RankFeeds
from .sampling.generators import GeneratorPool
from .sampling.prefetch import FeedManager
from .sampling.prompt_sets import PromptSets
from .training.runs import RunsService

if TYPE_CHECKING:
    from ..training.run_queue import RunManager


def open_workspace(path: str | None = None) -> Workspace:
    """The workspace at `path` (default ./workspace or $ALIGNSTUDIO_WORKSPACE), made if missing."""
    return Workspace.open(path)


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
    runs: RunsService
    rounds: RoundsService = field(init=False)  # rounds live in the workspace
    ranking: RankingService = field(init=False)  # K answers per prompt, with feeds of their own
    live: LiveService = field(init=False)  # live sessions (issue 37): the Label tab's live pairs, chip and curve

    def _ranking(self) -> RankingService:
        return RankingService(self.store, RankFeeds(self.generators, self.prompt_sets, depth=self.feeds.depth))

    def __post_init__(self) -> None:
        self.rounds = RoundsService(self.workspace)
        self.ranking = self._ranking()
        self.live = LiveService(self.workspace, self.store, self.generators, feeds=self.feeds)
        self.arena.live = self.live  # the Arena's "live" model: the newest live version

    @classmethod
    def build(
        cls,
        workspace: Workspace,
        default_model: str = DEFAULT_MODEL,
        prefetch_depth: int = 3,
        *,
        resolve_default: bool = True,
        autostart: bool = True,
    ) -> "Services":
        """The app's services (`serve`): the default model resolved at once (fail fast; the embedded model is
        converted once), and queued training runs start as soon as no other runs."""
        store = Store(workspace.db_path)
        if resolve_default:
            default_model = ModelRegistry(workspace, store).resolve(default_model).name
        from ..training.run_queue import RunManager

        return cls.assemble(
            workspace, store, default_model, RunManager(workspace, store, autostart=autostart), prefetch_depth
        )

    @classmethod
    def open(cls, path: str | None = None) -> "Services":
        """The same services for one CLI command, over the workspace at `path`: no model is loaded before the
        command names one, and a run starts only when the command runs it in the foreground."""
        return cls.build(open_workspace(path), resolve_default=False, autostart=False)

    @classmethod
    def assemble(
        cls,
        workspace: Workspace,
        store: Store,
        default_model: str,
        runs: RunManager,
        prefetch_depth: int = 3,
    ) -> "Services":
        """Every service over one store, with `runs` as the training queue (tests pass a stand-in worker's)."""
        registry = ModelRegistry(workspace, store)
        prompt_sets = PromptSets(workspace)
        generators = GeneratorPool(registry)
        feeds = FeedManager(generators, prompt_sets, depth=prefetch_depth)
        evaluation = EvaluationService(store, workspace, generators, prompt_sets, default_model)
        return cls(
            workspace,
            store,
            registry,
            prompt_sets,
            generators,
            feeds,
            LabelingService(store, feeds),
            FeedbackService(store, feeds),
            default_model,
            DataService(store, workspace, prompt_sets),
            ArenaService(store, generators),
            evaluation,
            RunsService(runs, registry, evaluation),
        )

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

    def limit_access(self, role_of=None, allow_paths=()) -> None:
        """The app's access policy (`serve`): roles from the accounts (`role_of`; None: one local user, an admin),
        and the folders a path typed in the app may lie in: the workspace, the default model's, the shipped example
        data, `allow_paths`."""
        from ..core import access
        from .sampling.prompt_sets import DATA_DIR

        model = self.registry.resolve(self.default_model)
        access.configure(
            role_of=role_of,
            path_roots=[
                self.workspace.root,
                model.folder,
                *([model.base_folder] if model.base_folder else []),
                DATA_DIR,
                *allow_paths,
            ],
        )

    def tokenizer(self, name: str):
        """A model's tokenizer, without loading its weights (to count tokens)."""
        from ..core.models import load_tokenizer

        ref = self.registry.resolve(name)
        return load_tokenizer(ref.base_folder or ref.folder)

    def close(self) -> None:
        self.live.close()  # the trainers this app started stop with it
        self.feeds.stop()
        self.ranking.feeds.stop()
