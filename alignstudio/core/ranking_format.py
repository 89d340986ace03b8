"""Imported rankings: `{"prompt": ..., "ranking": [best, ..., worst]}` rows, the prompt as text or a conversation.

Each answer is text or a list of assistant messages (TRL's conversational form). A row becomes one store row
{messages, ranking: [texts, best first], params_ranking}, stored as a ranking and its K(K-1)/2 pairs.
"""

from __future__ import annotations

from .conversation import conversation_problems, text_of
from .formats import _messages_field, _no_control

MAX_RANKED = 16  # answers one imported ranking may order (120 pairs)


def ranking_rows(origin, records) -> tuple[list[dict], int]:
    """Store rows of every record, or one error naming the file, line and field."""
    rows = []
    for line, record in records:
        messages = _messages_field(origin.path, line, record, "prompt", "user")
        ranking = record.get("ranking")
        if not isinstance(ranking, list) or not 2 <= len(ranking) <= MAX_RANKED:
            raise origin.fail(line, f"field 'ranking' must be a list of 2 to {MAX_RANKED} answers, best first")
        texts = []
        for n, answer in enumerate(ranking, 1):
            completion = [{"role": "assistant", "content": answer}] if isinstance(answer, str) else answer
            problems = conversation_problems(messages, completion, completion_name=f"answer {n}")
            text = text_of(completion).strip()
            if problems or not text:
                raise origin.fail(line, f"field 'ranking', answer {n}: {(problems or ['it is empty'])[0]}")
            _no_control(origin.path, line, "ranking", text)
            texts.append(text)
        if len(set(texts)) != len(texts):
            raise origin.fail(line, "field 'ranking' holds the same answer twice")
        rows.append(
            {
                "messages": messages,
                "ranking": texts,
                "params_ranking": [origin.provenance(line, record.get("id"), rank=n) for n in range(1, len(texts) + 1)],
            }
        )
    return rows, 0
