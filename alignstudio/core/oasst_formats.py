"""OpenAssistant (oasst1, oasst2) conversations as preference pairs: sibling assistant replies ordered by `rank`.

Owns reading the flat message table (one row per message: message_id, parent_id, role, text, rank) and the tree
export (one tree per line, replies nested under `replies`), and the rule: under each user turn, the best-ranked
assistant reply (rank 0) is chosen against each lower-ranked sibling, and the prompt is the conversation from
the tree's root to that turn. Unranked and deleted replies give no pairs; equal ranks are ties, skipped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from .dataset_formats import Origin, Records, make_pair, number
from .formats import _field, _text_field

ROLES = {"prompter": "user", "assistant": "assistant"}


@dataclass(frozen=True)
class _Message:
    line: int | None
    id: str
    parent: str | None
    role: str
    text: str
    rank: float | None
    deleted: bool
    record: dict


def _message(origin: Origin, line, record: dict) -> _Message:
    message_id = _text_field(origin.path, line, record, "message_id")
    role = _field(origin.path, line, record, "role")
    if role not in ROLES:
        raise origin.fail(line, f"field 'role' must be prompter or assistant, got {role!r}")
    parent = record.get("parent_id") or None
    if parent is not None and not isinstance(parent, str):
        raise origin.fail(line, f"field 'parent_id' must be text, got {type(parent).__name__}")
    rank = record.get("rank")
    # no rank: null, NaN (pandas' null) or an empty CSV cell
    unranked = rank in (None, "") or (isinstance(rank, float) and math.isnan(rank))
    rank = None if unranked else number(origin, line, record, "rank")
    deleted = record.get("deleted") in (True, 1, "True", "true", "1")  # CSV gives text
    return _Message(
        line, message_id, parent, ROLES[role], _text_field(origin.path, line, record, "text"), rank, deleted, record
    )


def _conversation(origin: Origin, messages: dict[str, _Message], last: _Message) -> list[dict]:
    """The turns from the root down to `last`, as {role, content} messages."""
    path: list[dict] = []
    seen: set[str] = set()
    node: _Message | None = last
    while node is not None:
        if node.id in seen:
            raise origin.fail(node.line, f"field 'parent_id': message {node.id!r} is its own ancestor")
        seen.add(node.id)
        path.append({"role": node.role, "content": node.text.strip()})
        node = messages[node.parent] if node.parent else None
    return path[::-1]


def _provenance(origin: Origin, message: _Message) -> dict:
    return origin.provenance(
        message.line,
        message.id,
        parent_id=message.parent,
        rank=message.rank,
        tree_id=message.record.get("message_tree_id"),
        lang=message.record.get("lang"),
    )


def oasst_messages(origin: Origin, records: Records) -> tuple[list[dict], int]:
    """The flat message table (one message per row, as oasst1/oasst2 publish their splits)."""
    messages: dict[str, _Message] = {}
    for line, record in records:
        message = _message(origin, line, record)
        if message.id in messages:
            raise origin.fail(
                line, f"field 'message_id': {message.id!r} already appears on line {messages[message.id].line}"
            )
        messages[message.id] = message
    replies: dict[str | None, list[_Message]] = defaultdict(list)  # None: a reply to no message, skipped below
    for message in messages.values():
        if message.parent is not None and message.parent not in messages:
            raise origin.fail(message.line, f"field 'parent_id': message {message.parent!r} is not in the file")
        if message.role == "assistant" and message.rank is not None and not message.deleted:
            replies[message.parent].append(message)
    rows, skipped = [], 0
    for parent_id, siblings in replies.items():
        if parent_id is None or messages[parent_id].role != "user" or len(siblings) < 2:
            continue
        prompt = _conversation(origin, messages, messages[parent_id])
        best, *others = sorted(siblings, key=lambda m: m.rank or 0.0)  # every reply kept has a rank
        for other in others:
            if other.rank == best.rank:
                skipped += 1
                continue
            rows.append(
                make_pair(
                    origin,
                    other.line,
                    prompt,
                    best.text,
                    other.text,
                    _provenance(origin, best),
                    _provenance(origin, other),
                )
            )
    return rows, skipped


def oasst_trees(origin: Origin, records: Records) -> tuple[list[dict], int]:
    """The tree export (one tree per line: `message_tree_id` and its root message in `prompt`, replies nested),
    flattened into the message table; errors name the tree's line."""
    flat: Records = []
    for line, record in records:
        root = _field(origin.path, line, record, "prompt")
        if not isinstance(root, dict):
            raise origin.fail(line, "field 'prompt' must be the tree's root message (an object with 'replies')")
        stack = [(root, None)]
        while stack:
            node, parent = stack.pop()
            replies = node.get("replies") or []
            if not isinstance(replies, (list, tuple)) or not all(isinstance(r, dict) for r in replies):
                raise origin.fail(
                    line, f"field 'replies' of message {node.get('message_id')!r} must be a list of messages"
                )
            fields = {k: v for k, v in node.items() if k != "replies"}
            flat.append((line, fields | {"parent_id": parent, "message_tree_id": record.get("message_tree_id")}))
            stack.extend((reply, node.get("message_id")) for reply in reversed(replies))
    return oasst_messages(origin, flat)
