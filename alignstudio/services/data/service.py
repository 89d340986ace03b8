"""The data stage's one door: browse and fix labels, import, export snapshots, validate what is stored.

`DataService` is what the Data and Validate tabs and the `import`/`export`/`validate` commands call; the rules
(who may relabel what, an import stores every row or none, a snapshot's files are named by its number) live in
the modules beside it (`browser`, `importing`, `snapshots`, `checks`). It knows nothing of Gradio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ...core import access
from ...core.errors import UserError
from ...core.store import Store
from ...core.workspace import Workspace
from ..sampling.prompt_sets import PromptSets
from .annotators import QualityReport, annotator_quality, own_view
from .browser import browse_table, relabel
from .checks import validate_path, validate_store
from .importing import import_pairs
from .snapshots import Snapshot, export_snapshot
from .validation import Report

SNAPSHOT_COLUMNS = ["id", "kind", "rows", "fingerprint", "size_kb", "path"]


@dataclass
class DataService:
    store: Store
    workspace: Workspace
    prompt_sets: PromptSets

    # -- labels -------------------------------------------------------------------------------------------

    def browse(self, *, stored: bool = False, **filters) -> pd.DataFrame:
        return browse_table(self.store, stored=stored, **filters)

    def relabel(self, event_id: str, verdict: str, *, annotator: str) -> str:
        return relabel(self.store, _event(event_id), verdict, annotator=annotator.strip())

    def retract(self, event_id: str, *, annotator: str) -> str:
        return self.store.retract(_event(event_id), annotator=annotator.strip())

    def check_retract(self, event_id: str) -> None:
        """The refusal `retract` would give (someone else's label, no such label, already retracted), now."""
        self.store.check_retract(_event(event_id))

    def annotator_quality(self) -> QualityReport:
        """Per-annotator quality (`annotators`): every annotator's figures for admins; an annotator gets their own
        label count and agreement with the others only."""
        report = annotator_quality(self.store.preference_rows())
        mine = access.visible_annotator()
        return report if mine is None else own_view(report, mine)

    # -- import and export --------------------------------------------------------------------------------

    def import_file(
        self,
        path: str | Path | None,
        *,
        prompts: bool = False,
        name: str | None = None,
        fmt: str = "auto",
        hub: str | None = None,
        split: str = "train",
        limit: int | None = None,
        source: str = "import",
    ) -> str:
        """A prompt set, or preference pairs (ours or a public dataset's format): all rows stored, or none.
        Returns the line to show."""
        if prompts:
            if not path:
                raise UserError("a prompt set needs a file")
            set_name, count = self.prompt_sets.import_file(path, name or None)
            return f"imported {count} prompts as prompt set {set_name!r}"
        report = import_pairs(
            self.store, path, fmt=fmt or "auto", hub=hub, split=split, limit=limit, source=source, prompt_set=name or ""
        )
        return report.line()

    def export(
        self,
        kind: str,
        *,
        formats: list[str] = (),
        out: list[str] | None = None,
        sources: list[str] | None = None,
        exclude_sources: list[str] | None = None,
        include_pairs: bool = False,
        push_to_hub: str | None = None,
        private: bool = True,
        license_id: str = "other",
    ) -> Snapshot:
        """A versioned snapshot; `formats` also writes `exports/KIND-N/KIND-N.FMT` files (N: the snapshot's number)
        with the dataset card beside them; `push_to_hub` sends it to that Hub repository first (HF_TOKEN)."""
        out = list(out or [])
        if formats:
            stamp = f"{kind}-{len(self.store.snapshots()) + 1}"
            out += [str(self.workspace.exports_dir / stamp / f"{stamp}.{fmt}") for fmt in formats]
        return export_snapshot(
            self.store,
            self.workspace,
            kind,
            out=out,
            sources=sources,
            include_pairs=include_pairs,
            exclude_sources=exclude_sources,
            push_to_hub=push_to_hub,
            private=private,
            license_id=license_id,
        )

    def snapshots(self) -> list[dict]:
        """Every snapshot; none for an annotator (snapshots hold everyone's labels and name server paths), so
        the lists a page loads answer annotators with nothing."""
        return self.store.snapshots() if access.is_admin() else []

    def snapshot_table(self) -> pd.DataFrame:
        rows = []
        for snap in self.snapshots():
            path = Path(snap["path"])
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0
            rows.append(
                {
                    "id": snap["id"],
                    "kind": snap["kind"],
                    "rows": snap["rows"],
                    "fingerprint": snap["fingerprint"],
                    "size_kb": round(size / 1024, 1),
                    "path": str(path),
                }
            )
        return pd.DataFrame(rows, columns=SNAPSHOT_COLUMNS)

    # -- validation ---------------------------------------------------------------------------------------

    def validate_labels(self, kind: str, **options) -> Report:
        return validate_store(self.store, kind, **options)

    def validate_snapshot(self, snapshot_id: str, **options) -> Report:
        matches = [s for s in self.store.snapshots() if s["id"] == snapshot_id]
        if not matches:
            raise UserError(f"snapshot {snapshot_id} is gone")
        return validate_path(matches[0]["path"], **options)

    def validate_file(self, path: str | Path, kind: str | None = None, **options) -> Report:
        return validate_path(path, kind, **options)


def _event(event_id: str) -> str:
    if not (event_id or "").strip():
        raise UserError("select a label in the table first")
    return event_id.strip()
