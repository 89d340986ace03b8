"""Importing preference data into the store: our own files and the public datasets in their published formats.

The one door for the CLI's `import` and the Data tab: read a file (JSONL, CSV, Parquet, a `datasets` folder)
or a Hub split, convert it by its recognized (or named) format, and store every pair in one transaction.
Nothing is stored unless every row converts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...core import access
from ...core.dataset_formats import FORMAT_NAMES, convert, read_hub
from ...core.errors import UserError
from ...core.formats import MAX_UPLOAD_MB as MAX_UPLOAD_MB  # the cap on what the Data tab uploads to import
from ...core.formats import read_records
from ...core.store import Store

FORMATS = ("auto", *FORMAT_NAMES)


@dataclass(frozen=True)
class ImportReport:
    format: str
    pairs: int
    skipped: int  # rows the format's rule gives no pair for (ties, a lone completion)

    def line(self) -> str:
        skipped = f" ({self.skipped} rows skipped: ties or nothing to compare)" if self.skipped else ""
        return f"imported {self.pairs} preference pairs as {self.format}{skipped}"


def import_pairs(
    store: Store,
    path: str | Path | None = None,
    *,
    fmt: str = "auto",
    hub: str | None = None,
    split: str = "train",
    limit: int | None = None,
    source: str = "import",
    prompt_set: str = "",
) -> ImportReport:
    """Convert a file (or a Hub split) into preference pairs and store them all, or nothing."""
    access.require_admin("import")
    if path is None and hub is None:
        raise UserError("give a file to import, or --hub NAME")
    if path is not None and hub is not None:
        raise UserError("give a file to import or --hub NAME, not both")
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    if hub is not None:
        records, where, dataset = read_hub(hub, split), Path(f"{hub.replace('/', '_')}[{split}]"), hub
    else:
        records, where, dataset = read_records(path), Path(path), None
    converted = convert(records, where, fmt, dataset)
    rows = converted.rows[:limit] if limit else converted.rows
    count = store.import_preferences(rows, source=source, prompt_set=prompt_set)
    return ImportReport(converted.format, count, converted.skipped)
