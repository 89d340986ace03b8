"""The public preference datasets in their own published formats, converted into the store's preference rows.

Owns recognizing a format from its columns and each format's conversion rule: Anthropic HH-RLHF transcripts,
UltraFeedback (binarized and raw), Stanford SHP, Intel Orca DPO pairs and OpenAssistant (flat message table or
tree export, in `oasst_formats`), plus reading a split from the Hub. A row is {messages, chosen, rejected,
rationale, model_*, params_*}; each generation's params hold its provenance (dataset, original id, line, scores).
Reading files is `formats`'; storing rows is the store's. Every error names the file, the line and the field.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .conversation import as_messages, conversation_problems
from .errors import UserError
from .formats import _field, _messages_field, _text_field, _where, load_preferences

Records = list[tuple[int | None, dict]]


@dataclass(frozen=True)
class Origin:
    """Where the rows come from: `path` names the file (or Hub split) in errors, `dataset` goes in provenance."""

    path: Path
    dataset: str

    def fail(self, line, message: str) -> UserError:
        return UserError(f"{_where(self.path, line)}: {message}")

    def provenance(self, line, original_id, **extra) -> dict:
        found = {
            "dataset": self.dataset,
            "file": self.path.name,
            "line": line,
            "id": None if original_id is None else str(original_id),
        }
        return found | {k: v for k, v in extra.items() if v is not None}


def make_pair(
    origin: Origin,
    line,
    prompt: list[dict],
    chosen: str,
    rejected: str,
    prov_chosen: dict,
    prov_rejected: dict,
    models: tuple[str, str] = ("import", "import"),
) -> dict:
    """One store row, checked as TRL would see it (the prompt ends on the user's turn, answers not empty)."""
    for name, text in (("chosen", chosen), ("rejected", rejected)):
        problems = conversation_problems(prompt, [{"role": "assistant", "content": text}], completion_name=name)
        if problems:
            raise origin.fail(line, f"field '{name}': {problems[0]}")
    return {
        "messages": prompt,
        "chosen": chosen.strip(),
        "rejected": rejected.strip(),
        "rationale": "",
        "model_chosen": models[0],
        "model_rejected": models[1],
        "params_chosen": prov_chosen,
        "params_rejected": prov_rejected,
    }


def number(origin: Origin, line, record: dict, name: str, label: str | None = None) -> float:
    """A numeric field (CSV gives text); NaN, text and missing values are refused with the field's name
    (`label` names a nested one, e.g. 'completions[2].overall_score')."""
    if label is None:
        value = _field(origin.path, line, record, name)
    elif record.get(name) is None:
        raise origin.fail(line, f"missing field '{label}'")
    else:
        value = record[name]
    try:
        result = float(value)
    except (TypeError, ValueError):
        result = math.nan
    if isinstance(value, bool) or math.isnan(result):
        raise origin.fail(line, f"field '{label or name}' must be a number, got {value!r}")
    return result


def _split_last_answer(origin: Origin, line, name: str, messages: list[dict]) -> tuple[list[dict], str]:
    """A whole conversation split at its last assistant turn: (the conversation before it, that answer)."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        raise origin.fail(line, f"field '{name}' has no assistant turn")
    if last != len(messages) - 1:
        raise origin.fail(line, f"field '{name}' ends on a {messages[-1].get('role')} turn, not the assistant's")
    return messages[:last], str(messages[last].get("content") or "")


def _same_prompt(origin: Origin, line, prompt_c: list[dict], prompt_r: list[dict]) -> list[dict]:
    if prompt_c != prompt_r:
        raise origin.fail(
            line,
            "fields 'chosen' and 'rejected' differ before the last assistant turn (they must share one conversation)",
        )
    return prompt_c


# -- Anthropic HH-RLHF ------------------------------------------------------------------------------------------

_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def _transcript(origin: Origin, line, record: dict, name: str) -> list[dict]:
    """'\\n\\nHuman: ...\\n\\nAssistant: ...' as messages (a transcript may start without the blank lines)."""
    text = _text_field(origin.path, line, record, name)
    parts = _TURN.split("\n\n" + text.lstrip("\n"))
    if parts[0].strip() or len(parts) < 3:
        raise origin.fail(line, f"field '{name}' is not a 'Human: ... Assistant: ...' transcript")
    return [{"role": _HH_ROLES[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts), 2)]


def hh_rlhf(origin: Origin, records: Records) -> tuple[list[dict], int]:
    rows = []
    for line, record in records:
        prompt_c, chosen = _split_last_answer(origin, line, "chosen", _transcript(origin, line, record, "chosen"))
        prompt_r, rejected = _split_last_answer(origin, line, "rejected", _transcript(origin, line, record, "rejected"))
        prompt = _same_prompt(origin, line, prompt_c, prompt_r)
        prov = origin.provenance(line, record.get("id", line))  # published without ids: the row number is its id
        rows.append(make_pair(origin, line, prompt, chosen, rejected, prov, prov))
    return rows, 0


# -- UltraFeedback ----------------------------------------------------------------------------------------------


def ultrafeedback_binarized(origin: Origin, records: Records) -> tuple[list[dict], int]:
    """`chosen`/`rejected` are [user, assistant] message lists; `score_chosen`/`score_rejected` their ratings."""
    rows = []
    for line, record in records:
        sides = {}
        for name in ("chosen", "rejected"):
            messages = _messages_field(origin.path, line, record, name, "assistant")
            sides[name] = _split_last_answer(origin, line, name, messages)
        prompt = _same_prompt(origin, line, sides["chosen"][0], sides["rejected"][0])
        if not prompt:  # answers given alone: the prompt is the `prompt` column
            prompt = as_messages(_text_field(origin.path, line, record, "prompt"), "user")
        rid = record.get("prompt_id")
        rows.append(
            make_pair(
                origin,
                line,
                prompt,
                sides["chosen"][1],
                sides["rejected"][1],
                origin.provenance(line, rid, score=number(origin, line, record, "score_chosen")),
                origin.provenance(line, rid, score=number(origin, line, record, "score_rejected")),
            )
        )
    return rows, 0


def _completion_score(origin: Origin, line, completion: dict, index: int) -> float:
    """The binarized version's rating: the mean of the aspect ratings (`fine-grained_score`), else
    `overall_score`."""
    name = "fine-grained_score" if completion.get("fine-grained_score") is not None else "overall_score"
    return number(origin, line, completion, name, f"completions[{index}].{name}")


def ultrafeedback_raw(origin: Origin, records: Records) -> tuple[list[dict], int]:
    """openbmb/UltraFeedback: an `instruction` and rated `completions`. Rule (as HuggingFaceH4 binarized it):
    the best-rated completion is chosen, one of the others drawn at random is rejected; the draw is seeded by
    the prompt's id, so a row gives the same pair in any file order. A draw rated as high as the best is a
    tie and the row is skipped, as is a row with fewer than two completions."""
    rows, skipped = [], 0
    for line, record in records:
        instruction = _text_field(origin.path, line, record, "instruction")
        completions = _field(origin.path, line, record, "completions")
        if not isinstance(completions, (list, tuple)):
            raise origin.fail(line, f"field 'completions' must be a list, got {type(completions).__name__}")
        scored = []
        for index, completion in enumerate(completions):
            if not isinstance(completion, dict):
                raise origin.fail(line, f"field 'completions[{index}]' must be an object")
            if completion.get("response") is None:
                raise origin.fail(line, f"missing field 'completions[{index}].response'")
            _text_field(
                origin.path,
                line,
                {f"completions[{index}].response": completion["response"]},
                f"completions[{index}].response",
            )
            scored.append((_completion_score(origin, line, completion, index), index, completion))
        if len(scored) < 2:
            skipped += 1
            continue
        pid = hashlib.sha256(instruction.encode("utf-8")).hexdigest()  # the binarized version's prompt_id
        best = max(scored, key=lambda s: s[0])
        other = random.Random(pid).choice([s for s in scored if s is not best])
        if other[0] == best[0]:
            skipped += 1
            continue
        prov = [
            origin.provenance(line, pid, completion=s[1], score=s[0], source=record.get("source"))
            for s in (best, other)
        ]
        models = (str(best[2].get("model") or "import"), str(other[2].get("model") or "import"))
        rows.append(
            make_pair(
                origin,
                line,
                as_messages(instruction, "user"),
                best[2]["response"],
                other[2]["response"],
                prov[0],
                prov[1],
                models=models,
            )
        )
    return rows, skipped


# -- Stanford SHP -----------------------------------------------------------------------------------------------


def shp(origin: Origin, records: Records) -> tuple[list[dict], int]:
    """`history` is the post; `labels` is 1 when `human_ref_A` is preferred. The score ratio (the published
    `score_ratio`, else the higher score over the lower) says how clear the preference is."""
    rows = []
    for line, record in records:
        history = _text_field(origin.path, line, record, "history")
        label = _field(origin.path, line, record, "labels")
        if str(label) not in ("0", "1", "True", "False"):
            raise origin.fail(line, f"field 'labels' must be 0 or 1, got {label!r}")
        a_wins = str(label) in ("1", "True")
        scores = {s: number(origin, line, record, f"score_{s}") for s in "AB"}
        ratio: float | None
        if record.get("score_ratio") is not None:
            ratio = number(origin, line, record, "score_ratio")
        else:
            ratio = max(scores.values()) / min(scores.values()) if min(scores.values()) > 0 else None
        texts = {s: _text_field(origin.path, line, record, f"human_ref_{s}") for s in "AB"}
        order = ("A", "B") if a_wins else ("B", "A")
        prov = [
            origin.provenance(
                line,
                record.get("post_id"),
                comment_id=record.get(f"c_root_id_{s}"),
                score=scores[s],
                score_ratio=ratio,
                domain=record.get("domain"),
            )
            for s in order
        ]
        rows.append(
            make_pair(origin, line, as_messages(history, "user"), texts[order[0]], texts[order[1]], prov[0], prov[1])
        )
    return rows, 0


# -- Intel Orca DPO pairs ---------------------------------------------------------------------------------------


def orca_dpo(origin: Origin, records: Records) -> tuple[list[dict], int]:
    """`system` (may be empty) opens the prompt, `question` is the user turn."""
    rows = []
    for line, record in records:
        system = record.get("system") or ""
        if not isinstance(system, str):
            raise origin.fail(line, f"field 'system' must be text, got {type(system).__name__}")
        prompt = ([{"role": "system", "content": system.strip()}] if system.strip() else []) + as_messages(
            _text_field(origin.path, line, record, "question"), "user"
        )
        prov = origin.provenance(line, record.get("id", line))  # published without ids: the row number
        rows.append(
            make_pair(
                origin,
                line,
                prompt,
                _text_field(origin.path, line, record, "chosen"),
                _text_field(origin.path, line, record, "rejected"),
                prov,
                prov,
            )
        )
    return rows, 0


# -- the registry -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetFormat:
    name: str
    dataset: str  # the published dataset, recorded in every pair's provenance
    columns: frozenset  # present in the first row: this format (checked in FORMATS order)
    convert: Callable[[Origin, Records], tuple[list[dict], int]]
    example: str = ""


def _trl(origin: Origin, records: Records) -> tuple[list[dict], int]:
    return load_preferences(origin.path, records=records), 0


def _formats() -> dict[str, DatasetFormat]:
    from .oasst_formats import oasst_messages, oasst_trees
    from .ranking_format import ranking_rows

    listed = [
        DatasetFormat(
            "oasst", "OpenAssistant/oasst1", frozenset({"message_id", "parent_id", "role", "text"}), oasst_messages
        ),
        DatasetFormat("oasst-trees", "OpenAssistant/oasst1", frozenset({"message_tree_id", "prompt"}), oasst_trees),
        DatasetFormat(
            "ultrafeedback", "openbmb/UltraFeedback", frozenset({"instruction", "completions"}), ultrafeedback_raw
        ),
        DatasetFormat(
            "ultrafeedback-binarized",
            "HuggingFaceH4/ultrafeedback_binarized",
            frozenset({"chosen", "rejected", "score_chosen", "score_rejected"}),
            ultrafeedback_binarized,
        ),
        DatasetFormat("shp", "stanfordnlp/SHP", frozenset({"history", "human_ref_A", "human_ref_B", "labels"}), shp),
        DatasetFormat("orca-dpo", "Intel/orca_dpo_pairs", frozenset({"question", "chosen", "rejected"}), orca_dpo),
        DatasetFormat("ranking", "", frozenset({"prompt", "ranking"}), ranking_rows),
        DatasetFormat("trl", "", frozenset({"prompt", "chosen", "rejected"}), _trl),
        DatasetFormat("hh-rlhf", "Anthropic/hh-rlhf", frozenset({"chosen", "rejected"}), hh_rlhf),
    ]
    return {f.name: f for f in listed}


FORMAT_NAMES = (
    "trl",
    "ranking",
    "hh-rlhf",
    "ultrafeedback-binarized",
    "ultrafeedback",
    "shp",
    "orca-dpo",
    "oasst",
    "oasst-trees",
)


def detect(records: Records) -> DatasetFormat:
    """The format whose columns the first row has (more specific formats first); TRL's when none match."""
    columns = set(records[0][1])
    formats = _formats()
    for fmt in formats.values():
        if fmt.columns <= columns:
            return fmt
    return formats["trl"]  # its loader names the missing field


@dataclass(frozen=True)
class Converted:
    format: str
    rows: list[dict]
    skipped: int  # rows that give no pair by their format's rule (ties, a single completion)


def convert(records: Records, where: Path, fmt: str = "auto", dataset: str | None = None) -> Converted:
    """Rows of the named format (or the one recognized from the columns); all rows or an error."""
    formats = _formats()
    if fmt in ("", "auto"):
        chosen = detect(records)
    elif fmt in formats:
        chosen = formats[fmt]
    else:
        raise UserError(f"unknown format {fmt!r}; use auto or one of {', '.join(FORMAT_NAMES)}")
    rows, skipped = chosen.convert(Origin(where, dataset or chosen.dataset), records)
    if not rows:
        raise UserError(f"{where.name}: no preference pairs in it as {chosen.name} ({skipped} rows skipped)")
    return Converted(chosen.name, rows, skipped)


def read_hub(name: str, split: str) -> Records:
    """A Hub dataset's split as records; one clear error when it cannot be fetched (offline, unknown name)."""
    import datasets

    try:
        data = datasets.load_dataset(name, split=split)
    except Exception as exc:  # offline, unknown name or split, or a network failure: all the user's to fix
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UserError(
            f"cannot load {name} (split {split}) from the Hugging Face Hub: {type(exc).__name__}: {first}"
        ) from None
    return [(i + 1, row) for i, row in enumerate(data)]
