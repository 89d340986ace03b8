"""Prompt sets: the shipped ones in data/ and those a user imported into the workspace.

Owns naming, import (validate everything, then write atomically) and loading with a small cache.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...core import access
from ...core.errors import UserError
from ...core.formats import PromptItem, load_prompts, write_records
from ...core.workspace import Workspace

DATA_DIR = Path(__file__).resolve().parents[3] / "data"
SHIPPED = {"default": DATA_DIR / "prompts.jsonl", "eval": DATA_DIR / "eval_prompts.jsonl"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PromptSets:
    def __init__(self, workspace: Workspace):
        self.folder = workspace.root / "prompt_sets"
        self.folder.mkdir(exist_ok=True)
        self._cache: dict[str, tuple[float, list[PromptItem]]] = {}

    def _path(self, name: str) -> Path:
        if name in SHIPPED:
            return SHIPPED[name]
        path = self.folder / f"{name}.jsonl"
        if not _NAME.match(name) or not path.exists():
            raise UserError(f"unknown prompt set {name!r}; known: {', '.join(self.names())}")
        return path

    def names(self) -> list[str]:
        return list(SHIPPED) + sorted(p.stem for p in self.folder.glob("*.jsonl"))

    def load(self, name: str) -> list[PromptItem]:
        path = self._path(name)
        mtime = path.stat().st_mtime
        cached = self._cache.get(name)
        if cached is None or cached[0] != mtime:
            cached = (mtime, load_prompts(path))
            self._cache[name] = cached
        return cached[1]

    def import_file(self, source: str | Path, name: str | None = None) -> tuple[str, int]:
        """Validate a JSONL/CSV/Parquet prompt file and keep it as a named set; returns (name, count)."""
        access.require_admin("import")
        name = name or Path(source).stem
        if not _NAME.match(name):
            raise UserError(f"prompt set name {name!r} must be letters, digits, '_', '-' or '.' (max 64)")
        if name in SHIPPED:
            raise UserError(f"{name!r} is a shipped prompt set; choose another name")
        items = load_prompts(source)  # raises on the first bad line; nothing is written then
        rows = [
            {"id": it.id or f"{name}-{i + 1}", "prompt": it.messages, "category": it.category}
            for i, it in enumerate(items)
        ]
        write_records(rows, self.folder / f"{name}.jsonl")
        return name, len(rows)
