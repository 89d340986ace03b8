"""The model registry: which models can be sampled from, and where their files are.

Names resolve to folders: the embedded SmolLM2 (converted on first use), model versions registered in the
store (trained adapters and merged checkpoints), a run folder (its `model/`), or any local Hugging Face
checkpoint folder. Loading the weights is `core.models`' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import access, models
from .errors import UserError
from .store import Store
from .workspace import Workspace


@dataclass(frozen=True)
class ModelRef:
    name: str  # registry name, shown in the UI and recorded with every generation
    folder: Path  # checkpoint or adapter folder
    base_folder: Path | None  # for adapters: the checkpoint the adapter sits on

    @property
    def is_adapter(self) -> bool:
        return self.base_folder is not None


class ModelRegistry:
    def __init__(self, workspace: Workspace, store: Store):
        self.workspace = workspace
        self.store = store

    def names(self) -> list[str]:
        """Everything the UI offers: the embedded model first, then versions, newest last (reward models score
        responses and generate none: they are judges, not listed here)."""
        return [models.EMBEDDED_NAME] + [v["name"] for v in self.store.model_versions() if v["kind"] != "reward"]

    def newest_trained(self) -> str | None:
        trained = [v["name"] for v in self.store.model_versions() if v["kind"] not in ("base", "reward")]
        return trained[-1] if trained else None

    def resolve(self, name_or_path: str) -> ModelRef:
        key = (name_or_path or "").strip()
        if not key:
            raise UserError("no model given")
        if key.lower() in models.EMBEDDED_ALIASES:
            return ModelRef(models.EMBEDDED_NAME, models.ensure_embedded(self.workspace.models_dir), None)
        for version in self.store.model_versions():
            if version["name"] == key:
                return self._from_folder(Path(version["path"]), name=key)
        path = Path(key).expanduser()
        access.check_typed_path(path)  # in the app: only inside the workspace or a folder allowed at start-up
        if path.is_dir():
            if (path / "model").is_dir() and not (path / "config.json").exists():
                path = path / "model"  # a training run folder: its final model
            return self._from_folder(path.resolve(), name=str(path.resolve()))
        raise UserError(
            f"unknown model {key!r}: use {models.EMBEDDED_NAME!r}, a registered version "
            f"({', '.join(self.names())}) or a local checkpoint folder"
        )

    def _from_folder(self, folder: Path, name: str) -> ModelRef:
        folder = models.check_model_folder(folder)
        if not models.is_adapter(folder):
            return ModelRef(name, folder, None)
        base = self.resolve(models.adapter_base(folder))
        if base.is_adapter:
            raise UserError(f"adapter {folder} sits on another adapter; merge the base first")
        return ModelRef(name, folder, base.folder)

    def load(self, ref: ModelRef, dtype=None):
        """(model, tokenizer) for a resolved reference; adapters are merged for sampling."""
        tokenizer_folder = ref.folder if (ref.folder / "tokenizer_config.json").exists() else ref.base_folder
        tokenizer = models.load_tokenizer(tokenizer_folder or ref.folder)
        model = models.load_causal_lm(ref.folder, ref.base_folder, dtype=dtype)
        return model, tokenizer
