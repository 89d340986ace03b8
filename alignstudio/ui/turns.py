"""A prompt that is a conversation, shown above the answers in the Label and Feedback tabs.

A prompt can hold earlier user and assistant turns before the user's last turn; the answers on screen reply to
that last turn in the light of the rest, so the annotator sees the earlier turns first, as a compact transcript
(one paragraph a turn, its role in bold). Every turn's text goes through the one escaper (render.py): a turn is
model or user text and must show as written. A single-turn prompt looks as it always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .render import escape_markdown_html

ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def _turn(label: str, text: str) -> str:
    """One turn: its label in bold, then its text (on the same line, unless the text opens with a code block,
    which must start a block of its own to stay code)."""
    body = escape_markdown_html(text)
    if not body or body.startswith("<pre>"):
        return f"**{label}**\n\n{body}".rstrip()
    return f"**{label}** {body}"


def prompt_markdown(heading: str, prompt_set: str, last_turn: str, history: Sequence[Mapping] = ()) -> str:
    """The prompt as markdown: `heading` (e.g. "**Prompt**") with the set's name, then the earlier turns of the
    conversation, if any, each labeled with its role, then the last user turn, the one the answers reply to."""
    title = f"{heading} ({escape_markdown_html(prompt_set)})"
    if not history:
        return f"{title}\n\n{escape_markdown_html(last_turn)}"
    count = len(history)
    earlier = [
        _turn(
            f"{ROLE_NAMES.get(m.get('role')) or escape_markdown_html(str(m.get('role')))}:", str(m.get("content") or "")
        )
        for m in history
    ]
    said = f"{count} earlier turn{'s' * (count != 1)}, then the turn the answers reply to"
    return "\n\n".join([f"{title} · a conversation: {said}", *earlier, _turn("User (answered below):", last_turn)])
