"""TRL's two data forms, and nothing else: plain text and conversations (lists of {"role", "content"}).

This module owns turning either form into messages (`as_messages`), reading the text out of either form
(`text_of`), and saying in plain words what is wrong with a prompt/completion as TRL would see it
(`conversation_problems`). It knows nothing about files, the store, tokenizers or training.

Plain strings are accepted everywhere: TRL's plain-text form is a `str` prompt and `str` completions.
A conversation is a list of message mappings; tuples and numpy object arrays (what pandas/parquet give back)
are read as lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROLES = ("system", "user", "assistant", "tool")
# A prompt hands the floor to the model: it ends on the user's turn, or on a tool result in agentic data.
PROMPT_END_ROLES = ("user", "tool")
# A completion is the model's side of the exchange: assistant turns, with tool results between tool calls.
COMPLETION_ROLES = ("assistant", "tool")


def _as_list(value: Any) -> list | None:
    """The value as a list when it is list-like (list, tuple, numpy array), else None."""
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    if type(value).__name__ == "ndarray" and getattr(value, "ndim", 0) == 1:
        return list(value)
    return None


def is_conversational(value: Any) -> bool:
    """True when `value` is a non-empty list of mappings with a "role" (TRL's conversational form)."""
    items = _as_list(value)
    return bool(items and isinstance(items[0], Mapping) and "role" in items[0])


def as_messages(value: Any, role: str = "user") -> list[dict]:
    """`value` as a list of {"role", "content"} messages.

    A plain string becomes one message with the given role (use "assistant" for a completion); a list of
    messages is copied as plain dicts. Anything else raises TypeError.
    """
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    items = _as_list(value)
    if items is None:
        raise TypeError(f"expected text or a list of messages, got {type(value).__name__}")
    messages = []
    for position, message in enumerate(items, start=1):
        if not isinstance(message, Mapping):
            raise TypeError(f"message {position} is {type(message).__name__}, not a {{role, content}} mapping")
        messages.append(dict(message))
    return messages


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = _as_list(content)
    if parts is not None:  # multimodal content: a list of {"type": "text", "text": ...} parts
        return " ".join(p.get("text", "") for p in parts if isinstance(p, Mapping) and p.get("text"))
    return str(content)


def text_of(value: Any, sep: str = "\n") -> str:
    """The text of a prompt or completion in either form: the string itself, or the message contents joined.

    None gives "". Never raises: malformed values are for `conversation_problems` to report.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    items = _as_list(value)
    if items is None:
        return str(value)
    return sep.join(_content_text(m.get("content")) if isinstance(m, Mapping) else str(m) for m in items)


def _message_problems(messages: list, name: str) -> list[str]:
    problems = []
    for position, message in enumerate(messages, start=1):
        where = f"{name} turn {position}"
        if not isinstance(message, Mapping):
            problems.append(f"{where} is not a {{role, content}} message ({type(message).__name__})")
            continue
        role = message.get("role")
        if "role" not in message:
            problems.append(f"{where} has no role")
        elif role not in ROLES:
            problems.append(f"{where} has unknown role {role!r} (expected one of {', '.join(ROLES)})")
        elif role == "system" and position > 1:
            problems.append(f"{where} is a system message; a system message belongs at the start of the prompt")
        if "content" not in message:
            problems.append(f"{where} has no content")
            continue
        content = message["content"]
        if not isinstance(content, str):
            problems.append(f"{where} content is {type(content).__name__}, not text")
        elif not content.strip():
            problems.append(f"{where} is empty")
    return problems


def _form_problem(value: Any, name: str) -> str | None:
    """None when `value` is text or a list; otherwise what it is instead."""
    if isinstance(value, str) or _as_list(value) is not None:
        return None
    if value is None:
        return f"{name} is missing"
    return f"{name} must be text or a list of messages, not {type(value).__name__}"


def conversation_problems(prompt: Any, completion: Any, *, completion_name: str = "completion") -> list[str]:
    """Plain-words problems TRL would trip on in this prompt/completion, or [] when it is well formed.

    Checks: both are text or lists of messages and in the same form; every message is a mapping with a known
    role and non-empty string content; a system message only opens the prompt; the prompt ends on a user (or
    tool) turn; the completion holds only assistant/tool turns and at least one assistant turn.
    Plain-text prompt and completion are always fine here (empty text is a separate, length check).
    `completion_name` names the completion in messages ("chosen", "rejected", ...).
    """
    problems = [p for p in (_form_problem(prompt, "prompt"), _form_problem(completion, completion_name)) if p]
    if problems:
        return problems
    prompt_list, completion_list = _as_list(prompt), _as_list(completion)
    if prompt_list is None and completion_list is None:
        return []
    if (prompt_list is None) != (completion_list is None):
        plain, listed = ("prompt", completion_name) if prompt_list is None else (completion_name, "prompt")
        return [f"{plain} is plain text but {listed} is a list of messages; use one form for both"]

    if not prompt_list:
        problems.append("prompt has no turns")
    else:
        problems += _message_problems(prompt_list, "prompt")
        last = prompt_list[-1]
        last_role = last.get("role") if isinstance(last, Mapping) else None
        if last_role not in PROMPT_END_ROLES:
            problems.append(f"prompt's last turn is {last_role!r}; a prompt should end on the user's turn")

    if not completion_list:
        problems.append(f"{completion_name} has no turns")
    else:
        problems += _message_problems(completion_list, completion_name)
        roles = [m.get("role") for m in completion_list if isinstance(m, Mapping)]
        for position, role in enumerate(roles, start=1):
            if role in ROLES and role not in COMPLETION_ROLES:
                problems.append(
                    f"{completion_name} turn {position} has role {role!r}; a completion holds the model's reply"
                )
        if "assistant" not in roles:
            problems.append(f"{completion_name} has no assistant turn")
    return problems
