"""Running the validator on what users have: the store's labels, a snapshot, or a file.

Glue between sources and `services.data.validation` (which owns the checks); the CLI, the Validate tab and the
training gate all call these, so they see the same report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...core import access
from ...core.errors import UserError
from ...core.formats import read_records
from ...core.store import Store
from .browser import label_records
from .snapshots import dpo_rows, kto_rows
from .validation import Report, validate


def validate_store(
    store: Store, kind: str = "dpo", *, include_pairs: bool = False, tokenizer=None, max_length: int | None = None
) -> Report:
    """The rows an export would produce now, plus the label records behind them (position bias, agreement)."""
    access.require_admin("validating the store")
    if kind not in ("dpo", "kto"):
        raise UserError(f"kind must be dpo or kto, not {kind!r}")
    rows = dpo_rows(store) if kind == "dpo" else kto_rows(store, include_pairs)
    return validate(rows, kind, tokenizer=tokenizer, max_length=max_length, labels=label_records(store))


def validate_path(
    path: str | Path, kind: str | None = None, *, tokenizer=None, max_length: int | None = None
) -> Report:
    """A JSONL/CSV/Parquet file or a `datasets` folder (a snapshot)."""
    access.require_admin("validating a file")
    access.check_typed_path(path)
    rows = [record for _, record in read_records(path)]
    return validate(rows, kind, tokenizer=tokenizer, max_length=max_length)


def histogram(
    series: dict[str, list[float]],
    bins: int = 20,
    value_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Counts per bin for several series on shared bins, long form for a Gradio BarPlot (bin, count, series).
    Bins are labelled by their lower edge, as text, in ascending numeric order (see `bin_order`)."""
    values = [np.asarray(v, dtype=float) for v in series.values() if len(v)]
    if not values:
        return pd.DataFrame(columns=["bin", "count", "series"])
    low, high = value_range or (float(min(v.min() for v in values)), float(max(v.max() for v in values)))
    edges = np.linspace(low, high if high > low else low + 1, bins + 1)
    step = edges[1] - edges[0]
    decimals = 0 if step >= 1 else 1 if step >= 0.1 - 1e-9 else 2  # as few as keep every bin's label distinct
    frames = []
    for name, data in series.items():
        counts, _ = np.histogram(np.asarray(data, dtype=float), bins=edges)
        labels = [f"{edges[i]:.{decimals}f}" for i in range(bins)]
        frames.append(pd.DataFrame({"bin": labels, "count": counts, "series": name}))
    return pd.concat(frames, ignore_index=True)


def bin_order(frame: pd.DataFrame) -> list[str]:
    """A histogram's bin labels in numeric order (a plot would otherwise sort them as text: 102, 106, 19)."""
    return sorted(dict.fromkeys(frame["bin"]), key=float) if len(frame) else []


def gate_training_data(data: str | Path, *, override: bool = False) -> Report:
    """Validate training data before a run is queued: errors block it unless the user overrides them."""
    report = validate_path(data)
    if report.has_errors and not override:
        errors = [f for f in report.findings if f.severity == "error"]
        first = errors[0]
        raise UserError(
            f"the training data has {len(errors)} validation error(s), first: {first.check} "
            f"({first.count} rows) - fix the data, or override to train anyway"
        )
    return report
