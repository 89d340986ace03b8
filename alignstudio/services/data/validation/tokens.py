"""The token-length check: lengths built the way TRL builds them (chat template, then tokens), and the rows a
`max_length` would cut or drop. Needs a tokenizer; the other row checks do not."""

from __future__ import annotations

from typing import Any

import numpy as np

from alignstudio.core.conversation import as_messages

from .prepared import _Data
from .report import _CHUNK, MAX_EXAMPLES, TRL_DEFAULT_MAX_LENGTH, Finding, Thresholds, _flag


def _token_counts(tokenizer: Any, texts: list[str], add_special_tokens: bool) -> np.ndarray:
    out = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), _CHUNK):
        chunk = texts[start : start + _CHUNK]
        ids = tokenizer(chunk, add_special_tokens=add_special_tokens, return_attention_mask=False)["input_ids"]
        out[start : start + len(chunk)] = [len(x) for x in ids]
    return out


def _render(tokenizer: Any, convs: list[list[dict]], generation_prompt: bool) -> tuple[list[str], dict[int, str]]:
    """Chat-template text per conversation, in batches; (texts, {index: error}) for the ones that fail."""
    texts: list[str] = []
    errors: dict[int, str] = {}
    for start in range(0, len(convs), _CHUNK):
        chunk = convs[start : start + _CHUNK]
        try:
            texts += tokenizer.apply_chat_template(chunk, tokenize=False, add_generation_prompt=generation_prompt)
        except Exception:  # the template raised for the whole batch: find the rows it fails on
            for offset, conv in enumerate(chunk):
                try:
                    texts.append(
                        tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=generation_prompt)
                    )
                except Exception as exc:  # any template error is a finding, not a crash
                    errors[start + offset] = f"{type(exc).__name__}: {exc}"
                    texts.append("")
    return texts, errors


def _aligned(values: np.ndarray, rows: np.ndarray, n: int) -> list:
    """Per-row list with None for the rows that were not measured."""
    out: list = [None] * n
    for row, value in zip(rows.tolist(), values.tolist()):
        out[row] = value
    return out


def check_truncation(
    data: _Data, stats: dict, th: Thresholds, *, tokenizer: Any = None, max_length: int | None = None
) -> list[Finding]:
    """Token lengths built the way TRL builds them, and the rows `max_length` would cut or drop.

    TRL tokenizes the prompt and prompt+completion, through the chat template for conversations and as one
    concatenated string (+ EOS) for plain text. Past max_length the sequence loses its end (how the response
    finishes); a prompt that alone reaches max_length makes TRL drop the row.
    """
    if tokenizer is None:
        if max_length is None:
            return []
        return [
            Finding(
                "truncation",
                "info",
                f"max_length={max_length} was given without a tokenizer, so "
                "truncation was not checked. Pass the model's tokenizer to count tokens.",
            )
        ]
    source = "given"
    if max_length is None:
        max_length, source = TRL_DEFAULT_MAX_LENGTH, "TRL default"
    ok = np.flatnonzero(~data.unusable)
    names = list(data.texts)
    errors: dict[int, str] = {}
    full = {}
    if data.form == "conversational" and getattr(tokenizer, "chat_template", None):
        method = "chat template"
        prompt_convs = [as_messages(data.prompts[i], "user") for i in ok]
        texts, errs = _render(tokenizer, prompt_convs, True)
        errors.update({int(ok[k]): e for k, e in errs.items()})
        prompt_len = _token_counts(tokenizer, texts, add_special_tokens=False)
        for name in names:
            convs = [p + as_messages(data.completions[name][i], "assistant") for p, i in zip(prompt_convs, ok)]
            texts, errs = _render(tokenizer, convs, False)
            errors.update({int(ok[k]): e for k, e in errs.items()})
            full[name] = _token_counts(tokenizer, texts, add_special_tokens=False)
    else:
        method = "plain concatenation" + ("" if data.form == "plain" else " (tokenizer has no chat template)")
        eos = getattr(tokenizer, "eos_token", None) or ""
        prompts = [data.prompt_text[i] for i in ok]
        prompt_len = _token_counts(tokenizer, prompts, add_special_tokens=True)
        for name in names:
            completions = (data.texts[name][i] for i in ok)
            texts = [p + (t if t.endswith(eos) else t + eos) for p, t in zip(prompts, completions)]
            full[name] = _token_counts(tokenizer, texts, add_special_tokens=True)

    sequence = np.maximum.reduce(list(full.values())) if len(ok) else np.zeros(0, dtype=np.int64)
    failed = np.isin(ok, list(errors))
    dropped = (prompt_len >= max_length) & ~failed
    cut = (sequence > max_length) & ~dropped & ~failed
    stats.update(
        token_length_method=method,
        max_length=max_length,
        max_length_source=source,
        prompt_tokens=_aligned(prompt_len, ok, data.n),
        sequence_tokens=_aligned(sequence, ok, data.n),
        longest_sequence_tokens=int(sequence.max()) if len(sequence) else 0,
        truncated_rows=int(cut.sum()),
        prompt_too_long_rows=int(dropped.sum()),
    )
    for name in names:
        stats[f"{name}_tokens"] = _aligned(np.maximum(full[name] - prompt_len, 0), ok, data.n)
    findings = []
    if errors:
        bad = sorted(errors)
        data.unusable[bad] = True
        findings.append(
            Finding(
                "chat_template",
                "error",
                f"The tokenizer's chat template fails on {len(bad)} row(s), so TRL would fail on them too: fix those "
                "messages, or use a tokenizer whose template accepts them.",
                len(bad),
                bad[:MAX_EXAMPLES],
                [f"row {i}: {errors[i]}" for i in bad[:MAX_EXAMPLES]],
            )
        )
    mask = np.zeros(data.n, dtype=bool)
    if cut.any():
        mask[ok[cut]] = True
        findings.append(
            _flag(
                "truncation",
                "warning",
                mask,
                f"{int(cut.sum())} row(s) are longer than max_length={max_length} tokens ({source}; prompt + longest "
                f"response, up to {int(sequence.max())}). TRL cuts the end off, so the model never sees how those "
                "responses finish: raise max_length, or shorten or drop these rows.",
            )
        )
    if dropped.any():
        mask = np.zeros(data.n, dtype=bool)
        mask[ok[dropped]] = True
        findings.append(
            _flag(
                "prompt_too_long",
                "warning",
                mask,
                f"{int(dropped.sum())} row(s) have a prompt of max_length={max_length} tokens or more on its own. "
                "TRL drops these rows entirely: raise max_length or shorten the prompts.",
            )
        )
    return findings
