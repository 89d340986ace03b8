"""How long text a person types may be: one check, with the limit in its message, used by the services that take
such text (so the browser, the HTTP API and the CLI meet the same caps). A label's reason is a sentence or two,
a typed prompt a question; without caps a 5 MiB reason was stored and a 13,000-character prompt kept the only
core busy for minutes while everyone else waited."""

from __future__ import annotations

from ..core.errors import UserError

REASON_CHARS = 2_000  # why a label was given
PROMPT_CHARS = 4_000  # a prompt typed into the Label tab (the model reads all of it, on a CPU)
ANSWER_CHARS = 20_000  # a better answer a person wrote
NAME_CHARS = 100  # annotator names
ANY_TEXT_CHARS = 100_000  # every other text box of the app (search filters, paths, names): a backstop


def check_length(text: str | None, what: str, limit: int) -> str:
    """`text` unchanged, or one UserError naming the field, its length and the limit."""
    if text is not None and len(text) > limit:
        raise UserError(f"{what} is {len(text):,} characters; the limit is {limit:,}")
    return text
