"""Where runtime state lives: the store, snapshots, runs and the model cache (never under data/)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

ENV_VAR = "ALIGNSTUDIO_WORKSPACE"
# Plain encyclopedic prose shipped with the app: the text the alignment tax (Evaluate tab, effect benchmark) and
# the drift budget (training.drift) measure perplexity on, so all three give the same figure for one model.
ALIGNMENT_TAX_TEXT = Path(__file__).resolve().parents[2] / "data" / "heldout_text.txt"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> "Workspace":
        root = Path(path or os.environ.get(ENV_VAR) or "workspace").expanduser().resolve()
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"workspace {root} is not writable: {exc.strerror or exc}") from None
        ws = cls(root)
        for sub in (ws.models_dir, ws.snapshots_dir, ws.runs_dir, ws.exports_dir):
            sub.mkdir(exist_ok=True)
        return ws

    @property
    def db_path(self) -> Path:
        return self.root / "store.sqlite"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def snapshots_dir(self) -> Path:
        return self.root / "snapshots"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"
