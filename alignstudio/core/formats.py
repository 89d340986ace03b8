"""Files in and out: JSONL, CSV, Parquet and `datasets` folders, read strictly and written atomically.

Owns parsing user files into plain records (every error names the line and the field), normalizing prompt
sets and preference files, and writing exports so that a crash never leaves half a file. Column meaning
follows TRL: DPO `prompt`/`chosen`/`rejected`, KTO `prompt`/`completion`/`label`, conversational or plain.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .conversation import as_messages, conversation_problems, is_conversational, text_of
from .errors import UserError

MAX_FIELD_CHARS = 200_000  # a prompt or response beyond this is almost surely a broken file, not data
# A line holds a few fields of up to MAX_FIELD_CHARS each, maybe \u-escaped (6 bytes a character): 16 MiB is
# room for that, and still bounds what one line can make us hold.
MAX_LINE_BYTES = 16 << 20
# A file is held as Python records (several times its size in memory): past 1 GiB, use a datasets folder
# (memory-mapped) or split it.
MAX_FILE_BYTES = 1 << 30
MAX_UPLOAD_MB = 50  # the web app's upload limit (`serve --max-upload-mb`); the CLI reads up to MAX_FILE_BYTES
# C0 control characters other than tab, newline and carriage return: binary junk, not text
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def _where(path: Path, line: int | None) -> str:
    return f"{path.name}, line {line}" if line is not None else path.name


def read_records(path: str | os.PathLike) -> list[tuple[int | None, dict]]:
    """Records of a JSONL/CSV/Parquet file or a `datasets` folder, each with its 1-based line number."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    if path.is_dir():
        return _read_dataset_folder(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise UserError(
        f"{path.name}: unsupported file type {suffix or '(none)'}; use .jsonl, .csv, .parquet or a datasets folder"
    )


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UserError(
            f"{path.name}: {size:,} bytes is over the {MAX_FILE_BYTES:,}-byte limit for one file; "
            "split it or save it as a datasets folder"
        )


def _lines(path: Path):
    """(line number, text) for each line, read as a stream: no line over MAX_LINE_BYTES, no file over
    MAX_FILE_BYTES, UTF-8 only. Lines keep their line ending (the csv module wants it)."""
    _check_size(path)
    total = 0
    with open(path, "rb") as handle:
        for number in range(1, 1 << 62):
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            total += len(raw)
            if len(raw) > MAX_LINE_BYTES:
                raise UserError(f"{_where(path, number)}: the line is longer than {MAX_LINE_BYTES:,} bytes")
            if total > MAX_FILE_BYTES:  # the file grew while we read it
                _check_size(path)
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{_where(path, number)}: not valid UTF-8 (byte {raw[exc.start]:#x})") from None


def _read_jsonl(path: Path) -> list[tuple[int | None, dict]]:
    records = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            message = exc.msg.removesuffix(" at")  # e.g. "Invalid control character at"
            raise UserError(f"{_where(path, number)}: invalid JSON ({message} at column {exc.colno})") from None
        except RecursionError:  # e.g. '[' * 100000: the parser recurses once per level
            raise UserError(f"{_where(path, number)}: invalid JSON (nested too deeply)") from None
        if not isinstance(value, dict):
            raise UserError(f"{_where(path, number)}: expected a JSON object, got {type(value).__name__}")
        records.append((number, value))
    if not records:
        raise UserError(f"{path.name}: the file is empty")
    return records


def _read_csv(path: Path) -> list[tuple[int | None, dict]]:
    # The csv module's default field limit (131,072 characters) is below our own text limit: raise it to the
    # line cap (a field cannot be longer than its line), so a long field gets the clear length message below.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    reader = csv.DictReader(line for _, line in _lines(path))
    records: list[tuple[int | None, dict]] = []
    try:
        if not reader.fieldnames:
            raise UserError(f"{path.name}: the file is empty")
        for row in reader:
            if None in row:
                raise UserError(f"{_where(path, reader.line_num)}: more values than the header has columns")
            records.append((reader.line_num, {k: _csv_conversation(v) for k, v in row.items()}))
    except csv.Error as exc:
        raise UserError(f"{_where(path, reader.line_num)}: malformed CSV ({exc})") from None
    if not records:
        raise UserError(f"{path.name}: the file has a header but no rows")
    return records


def _csv_conversation(value):
    """A CSV cell holding a conversation as JSON (how `write_records` writes one) as its messages; any other
    text as it is. CSV has no lists, so this is how a conversational row survives a CSV round trip."""
    if not isinstance(value, str) or not value.lstrip().startswith("[{"):
        return value
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        return value
    return parsed if is_conversational(parsed) else value


def _read_parquet(path: Path) -> list[tuple[int | None, dict]]:
    import pyarrow.parquet as pq

    _check_size(path)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise UserError(f"{path.name}: not a readable Parquet file ({exc})") from None
    rows = table.to_pylist()
    if not rows:
        raise UserError(f"{path.name}: the file has no rows")
    return [(i + 1, row) for i, row in enumerate(rows)]


def _read_dataset_folder(path: Path) -> list[tuple[int | None, dict]]:
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise UserError(f"{path}: not a datasets folder saved with save_to_disk ({exc})") from None
    if isinstance(data, datasets.DatasetDict):
        if "train" not in data:
            raise UserError(f"{path}: a DatasetDict without a 'train' split")
        data = data["train"]
    rows = data.to_list()
    if not rows:
        raise UserError(f"{path}: the dataset has no rows")
    return [(i + 1, row) for i, row in enumerate(rows)]


# -- normalized record types -------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptItem:
    messages: list[dict]
    id: str = ""
    category: str = ""

    @property
    def text(self) -> str:
        return text_of(self.messages)


def _field(path: Path, line, record: dict, name: str):
    if name not in record or record[name] is None:
        present = ", ".join(sorted(map(str, record))) or "none"
        raise UserError(f"{_where(path, line)}: missing field '{name}' (fields present: {present})")
    return record[name]


def _text_field(path: Path, line, record: dict, name: str) -> str:
    value = _field(path, line, record, name)
    if not isinstance(value, str):
        raise UserError(f"{_where(path, line)}: field '{name}' must be text, got {type(value).__name__}")
    if not value.strip():
        raise UserError(f"{_where(path, line)}: field '{name}' is empty")
    if len(value) > MAX_FIELD_CHARS:
        raise UserError(
            f"{_where(path, line)}: field '{name}' is {len(value):,} characters (limit {MAX_FIELD_CHARS:,})"
        )
    _no_control(path, line, name, value)
    return value


def _no_control(path: Path, line, name: str, value: str) -> None:
    found = _CONTROL.search(value)
    if found:
        raise UserError(f"{_where(path, line)}: field '{name}' contains control character U+{ord(found.group()):04X}")


def _messages_field(path: Path, line, record: dict, name: str, role: str) -> list[dict]:
    value = _field(path, line, record, name)
    if isinstance(value, str):
        value = _text_field(path, line, record, name)
    elif not isinstance(value, list):
        raise UserError(
            f"{_where(path, line)}: field '{name}' must be text or a list of messages, got {type(value).__name__}"
        )
    try:
        messages = as_messages(value, role)
    except TypeError as exc:
        raise UserError(f"{_where(path, line)}: field '{name}': {exc}") from None
    total = sum(len(str(m.get("content", ""))) for m in messages)
    if total > MAX_FIELD_CHARS:
        raise UserError(f"{_where(path, line)}: field '{name}' is {total:,} characters (limit {MAX_FIELD_CHARS:,})")
    for message in messages:
        if isinstance(message.get("content"), str):
            _no_control(path, line, name, message["content"])
    return messages


def load_prompts(path: str | os.PathLike) -> list[PromptItem]:
    """A prompt set: rows with `prompt` (text or user messages), optional `id` and `category`."""
    path = Path(path)
    items, seen_ids = [], set()
    for line, record in read_records(path):
        messages = _messages_field(path, line, record, "prompt", "user")
        # checked as the prompt of a well-formed reply, so only the prompt's own problems can show
        problems = conversation_problems(messages, [{"role": "assistant", "content": "ok"}])
        if problems:
            raise UserError(f"{_where(path, line)}: field 'prompt': {problems[0]}")
        item_id = str(record.get("id") or "")
        if item_id and item_id in seen_ids:
            raise UserError(f"{_where(path, line)}: duplicate id {item_id!r}")
        seen_ids.add(item_id)
        items.append(PromptItem(messages, item_id, str(record.get("category") or "")))
    return items


def load_preferences(path: str | os.PathLike, records: list[tuple[int | None, dict]] | None = None) -> list[dict]:
    """Preference rows normalized to {messages, chosen, rejected} (chosen/rejected as plain text);
    `records` when the file was already read (errors still name `path`)."""
    path = Path(path)
    rows = []
    for line, record in records if records is not None else read_records(path):
        messages = _messages_field(path, line, record, "prompt", "user")
        chosen = _messages_field(path, line, record, "chosen", "assistant")
        rejected = _messages_field(path, line, record, "rejected", "assistant")
        for name, completion in (("chosen", chosen), ("rejected", rejected)):
            problems = conversation_problems(messages, completion, completion_name=name)
            if problems:
                raise UserError(f"{_where(path, line)}: field '{name}': {problems[0]}")
        rows.append(
            {
                "messages": messages,
                "chosen": text_of(chosen),
                "rejected": text_of(rejected),
                "rationale": str(record.get("rationale") or ""),
            }
        )
    return rows


# -- writing -------------------------------------------------------------------------------------------


def output_suffix(path: str | os.PathLike) -> str:
    """The file type `write_records` writes to `path`, or one clear error (checked before any work is done)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise UserError(f"{path.name}: unsupported output type {suffix or '(none)'}; use .jsonl, .csv or .parquet")
    return suffix


def write_records(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write rows as JSONL, CSV or Parquet (by suffix) via a temporary file renamed into place."""
    path = Path(path)
    suffix = output_suffix(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    try:
        if suffix in (".jsonl", ".json"):
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif suffix == ".csv":
            import pandas as pd

            frame = pd.DataFrame(rows)
            for column in frame.columns:  # nested conversational values go into CSV cells as JSON
                if frame[column].map(lambda v: isinstance(v, (list, dict))).any():
                    frame[column] = frame[column].map(lambda v: json.dumps(v, ensure_ascii=False))
            frame.to_csv(tmp, index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def new_folder(target: Path):
    """A folder written whole or not at all: yields a temporary sibling to fill, renamed to `target` (absent or
    empty) when the block ends; on any error the temporary folder is removed and `target` is left as it was."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
        if target.exists():
            target.rmdir()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(tmp_dir: Path, target: Path) -> Path:
    """Move a fully written folder into place (the old one, if any, is removed first)."""
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp_dir, target)
    return target
