"""Training data for the worker: a file or snapshot folder -> a checked `datasets.Dataset` in TRL's form.

Owns the per-method column requirements (DPO/ORPO/SimPO: prompt/chosen/rejected; KTO: prompt/completion/
label, with preference pairs unpaired by `trl.unpair_preference_dataset`) and the dataset fingerprint
recorded in the run card (a snapshot's `_fingerprint`, or the sha256 of a file). Reading files is
`core.formats.read_records`' job; message checks are `core.conversation`'s. Kept small on purpose so it can
merge into `core.formats` later.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..core.conversation import conversation_problems
from ..core.errors import UserError
from ..core.formats import read_records
from .group_batches import GROUP_COLUMN

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
KTO_COLUMNS = ("prompt", "completion", "label")
LABEL_SOURCES_FILE = "label_sources.json"  # in a snapshot folder: rows per label source, for model cards
_TRUE = {"true", "1", "yes", "up", "good", "desirable"}
_FALSE = {"false", "0", "no", "down", "bad", "undesirable"}


@dataclass
class TrainingData:
    dataset: object  # datasets.Dataset in TRL's columns
    fingerprint: str  # snapshot `_fingerprint` or "sha256:<hex>" of the file
    rows: int  # rows as read (before KTO unpairing)
    source: str  # absolute path
    kind: str  # "pairs" | "kto"
    label_sources: dict | None = None  # a snapshot's rows per label source (human, judge, arena, ...)


def fingerprint(path: str | Path) -> str:
    """The dataset's identity for the run card: a `datasets` folder's `_fingerprint`, else the file's sha256."""
    path = Path(path)
    if path.is_dir():
        import datasets

        try:
            data = datasets.load_from_disk(str(path))
        except Exception as exc:
            raise UserError(f"{path}: not a datasets folder saved with save_to_disk ({exc})") from None
        if isinstance(data, datasets.DatasetDict):
            data = data["train"] if "train" in data else next(iter(data.values()))
        return data._fingerprint
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _label(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UserError(f"{where}: 'label' must be true/false (or up/down), got {value!r}")


def _plain(value):
    """Parquet/numpy values back to plain lists and dicts."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _check(where: str, prompt, completion, name: str) -> None:
    if isinstance(completion, str) and not completion.strip():
        raise UserError(f"{where}: '{name}' is empty")
    if isinstance(prompt, str) and not prompt.strip():
        raise UserError(f"{where}: 'prompt' is empty")
    problems = conversation_problems(prompt, completion, completion_name=name)
    if problems:
        raise UserError(f"{where}: {problems[0]}")


def load_training_data(path: str | Path, method: str) -> TrainingData:
    """Read and check `path` for `method`; raises UserError naming the row and field on bad data."""
    from datasets import Dataset

    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"training data {path} does not exist")
    path = path.resolve()
    records = read_records(path)
    columns = set().union(*(set(r) for _, r in records))
    is_pairs = set(PAIR_COLUMNS) <= columns
    is_kto = set(KTO_COLUMNS) <= columns
    name = path.name
    if not is_pairs and not is_kto:
        want = "prompt/completion/label or prompt/chosen/rejected" if method == "kto" else "prompt/chosen/rejected"
        raise UserError(f"{name}: needs columns {want}; found {', '.join(sorted(columns)) or 'none'}")
    if method != "kto" and not is_pairs:
        raise UserError(
            f"{name}: {method.upper()} needs preference pairs (prompt/chosen/rejected); this file has "
            "single labelled answers (prompt/completion/label) - train it with KTO"
        )
    rows: list[dict] = []
    grouped = GROUP_COLUMN in columns and method in ("dpo", "orpo", "simpo")
    for line, record in records:
        where = f"{name}, row {line}"
        prompt = _plain(record.get("prompt"))
        if is_pairs and (method != "kto" or not is_kto):
            chosen, rejected = _plain(record.get("chosen")), _plain(record.get("rejected"))
            for field_name, value in (("chosen", chosen), ("rejected", rejected)):
                if value is None:
                    raise UserError(f"{where}: missing '{field_name}'")
                _check(where, prompt, value, field_name)
            if chosen == rejected:
                raise UserError(f"{where}: 'chosen' and 'rejected' are identical")
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
            if grouped:  # a ranking's pairs share a group id (training.group_batches keeps them in one step)
                rows[-1][GROUP_COLUMN] = record.get(GROUP_COLUMN)
        else:
            completion = _plain(record.get("completion"))
            if completion is None:
                raise UserError(f"{where}: missing 'completion'")
            _check(where, prompt, completion, "completion")
            rows.append({"prompt": prompt, "completion": completion, "label": _label(record.get("label"), where)})
    if len(rows) < 2:
        raise UserError(f"{name}: only {len(rows)} usable row(s); training needs at least 2")
    dataset = Dataset.from_list(rows)
    kind = "pairs" if "chosen" in rows[0] else "kto"
    if method == "kto" and kind == "pairs":
        from trl import unpair_preference_dataset

        dataset = unpair_preference_dataset(dataset)
    if method == "kto":
        labels = dataset["label"]
        if all(labels) or not any(labels):
            raise UserError(
                f"{name}: KTO needs both desirable and undesirable examples; all labels are {bool(labels[0])}"
            )
    return TrainingData(dataset, fingerprint(path), len(rows), str(path), kind, label_sources(path))


def label_sources(path: Path) -> dict | None:
    """Rows per label source, recorded in a snapshot folder by `services.export` (files have none)."""
    try:
        return json.loads((Path(path) / LABEL_SOURCES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
