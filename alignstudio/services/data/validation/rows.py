"""Row checks: lengths, similarity, duplicates, conversation form, token lengths and truncation."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from alignstudio.core.conversation import (
    as_messages,
    conversation_problems,
    is_conversational,
    text_of,
)

from .report import (
    MAX_EXAMPLES,
    Finding,
    Thresholds,
    _flag,
    _pct,
)

# --- prepared columns --------------------------------------------------------------------------------------


@dataclass
class _Data:
    kind: str
    form: str  # "conversational" | "plain"
    n: int
    prompts: list  # raw values
    prompt_text: list[str]
    prompt_keys: list[str]  # identity of each prompt (see _key)
    completions: dict[str, list]  # "chosen"/"rejected" or "completion" -> raw values
    texts: dict[str, list[str]]  # same names -> text
    label: np.ndarray | None  # KTO: bool per row (False where the label is invalid)
    label_ok: np.ndarray | None  # KTO: the label is a real boolean
    problems: dict[int, list[str]]  # row -> what makes it malformed
    unusable: np.ndarray  # rows an error-level check has ruled out


def _is_bool_label(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_)) or (type(value) is int and value in (0, 1))


def _key(value: Any) -> str:
    """A hashable identity for a prompt/completion in either form (roles count in conversations)."""
    if type(value) is str:
        return value
    try:
        return "\x1f".join(f"{m.get('role')}\x1d{m.get('content')}" for m in as_messages(value))
    except (TypeError, AttributeError):
        return repr(value)


def _prepare(rows: list[Mapping], kind: str) -> _Data:
    names = ("chosen", "rejected") if kind == "dpo" else ("completion",)
    n = len(rows)
    prompts = [r.get("prompt") for r in rows]
    completions = {name: [r.get(name) for r in rows] for name in names}
    # TRL reads the form from the first example; so do we.
    first = next((p for p in prompts if isinstance(p, str) or is_conversational(p)), None)
    conversational = first is not None and not isinstance(first, str)

    problems: dict[int, list[str]] = {}
    for i, values in enumerate(zip(prompts, *completions.values())):
        if all(type(v) is str for v in values):  # fast path: a plain row
            if conversational:
                problems[i] = ["row is plain text but the dataset is conversational (TRL reads the form from row 0)"]
            continue
        found: list[str] = []
        for name, completion in zip(names, values[1:]):
            found += [p for p in conversation_problems(values[0], completion, completion_name=name) if p not in found]
        if not found and not conversational:  # both sides are message lists here
            found.append("row is conversational but the dataset is plain text (TRL reads the form from row 0)")
        if found:
            problems[i] = found

    label = label_ok = None
    if kind == "kto":
        raw = [r.get("label") for r in rows]
        label_ok = np.fromiter(map(_is_bool_label, raw), dtype=bool, count=n)
        label = np.fromiter((bool(v) and ok for v, ok in zip(raw, label_ok)), dtype=bool, count=n)
        for i in np.flatnonzero(~label_ok):
            problems.setdefault(int(i), []).append(f"label is {raw[i]!r}; it must be true or false")

    def texts_of(values: list) -> list[str]:
        return [v if type(v) is str else text_of(v) for v in values]

    unusable = np.zeros(n, dtype=bool)
    unusable[list(problems)] = True
    return _Data(
        kind,
        "conversational" if conversational else "plain",
        n,
        prompts,
        texts_of(prompts),
        [_key(p) for p in prompts],
        completions,
        {k: texts_of(v) for k, v in completions.items()},
        label,
        label_ok,
        problems,
        unusable,
    )


def _word_counts(texts: list[str]) -> np.ndarray:
    return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))


# --- row checks --------------------------------------------------------------------------------------------


def check_malformed(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """Rows TRL cannot read as intended: wrong or unknown roles, empty turns, no assistant turn, prompt not
    ending on the user, non-text content, mixed forms, KTO labels that are not booleans."""
    stats["malformed_rows"] = len(data.problems)
    if not data.problems:
        return []
    rows = sorted(data.problems)
    # group "prompt turn 3 is empty" and "prompt turn 1 is empty" for the summary
    common = Counter(re.sub(r"\bturn \d+", "turn N", p) for i in rows for p in data.problems[i]).most_common(3)
    what = "; ".join(f"{kind} ({count})" for kind, count in common)
    details = [f"row {i}: {'; '.join(data.problems[i][:3])}" for i in rows[:MAX_EXAMPLES]]
    return [
        Finding(
            "malformed",
            "error",
            f"{len(rows)} row(s) are not valid TRL {data.kind.upper()} examples. Most often: {what}. TRL would fail "
            "on them or train on the wrong text: fix these rows or drop them.",
            len(rows),
            rows[:MAX_EXAMPLES],
            details,
        )
    ]


def check_empty_and_short(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """Empty responses (error: nothing to learn) and very short ones (warning: often failed generations)."""
    empty_any, short_any = np.zeros(data.n, dtype=bool), np.zeros(data.n, dtype=bool)
    for name, texts in data.texts.items():
        chars = np.fromiter((len(t.strip()) for t in texts), dtype=np.int64, count=data.n)
        empty, short = chars == 0, (chars > 0) & (chars < th.short_chars)
        stats[f"empty_{name}"], stats[f"short_{name}"] = int(empty.sum()), int(short.sum())
        empty_any |= empty
        short_any |= short
    what = "chosen or rejected response" if data.kind == "dpo" else "completion"
    findings = []
    if empty_any.any():
        data.unusable |= empty_any
        findings.append(
            _flag(
                "empty_responses",
                "error",
                empty_any,
                f"{int(empty_any.sum())} row(s) have an empty {what}. An empty response carries no preference signal: "
                "regenerate those responses or drop the rows.",
            )
        )
    if short_any.any():
        findings.append(
            _flag(
                "short_responses",
                "warning",
                short_any,
                f"{int(short_any.sum())} row(s) have a {what} shorter than {th.short_chars} characters. Fine for "
                "one-word answers; otherwise these are usually cut-off or failed generations: look at them.",
            )
        )
    return findings


def check_identical_pairs(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """DPO: chosen == rejected (after trimming): the two log-probabilities cancel, there is nothing to learn."""
    same = np.fromiter(
        (c.strip() == r.strip() for c, r in zip(data.texts["chosen"], data.texts["rejected"])), dtype=bool, count=data.n
    )
    stats["identical_pairs"] = int(same.sum())
    if not same.any():
        return []
    data.unusable |= same
    return [
        _flag(
            "identical_pairs",
            "error",
            same,
            f"{int(same.sum())} pair(s) have the same chosen and rejected text. DPO learns nothing from them "
            "and they dilute the batch: drop them, or relabel with a real difference.",
        )
    ]


def check_length_bias(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """DPO: chosen systematically longer (or shorter) than rejected teaches length, not quality."""
    chosen, rejected = _word_counts(data.texts["chosen"]), _word_counts(data.texts["rejected"])
    c_mean, r_mean = float(chosen.mean()), float(rejected.mean())
    ratio = c_mean / max(r_mean, 1.0)
    longer = chosen > rejected
    # Equal-length pairs say nothing about bias: the fraction rule looks at pairs that differ, so many ties
    # (one-word answers, templated text) do not read as "chosen is rarely longer".
    n_differ = int((chosen != rejected).sum())
    frac = float(longer.sum() / n_differ) if n_differ else 0.5
    stats.update(
        prompt_words=_word_counts(data.prompt_text).tolist(),
        chosen_words=chosen.tolist(),
        rejected_words=rejected.tolist(),
        chosen_mean_words=round(c_mean, 2),
        rejected_mean_words=round(r_mean, 2),
        length_ratio=round(ratio, 4),
        chosen_longer_fraction=round(float(longer.mean()), 4),
        chosen_longer_fraction_of_unequal=round(frac, 4),
    )
    ratio_biased = not th.length_ratio_low <= ratio <= th.length_ratio_high
    frac_biased = n_differ >= th.min_rows_for_fraction and not th.chosen_longer_low <= frac <= th.chosen_longer_high
    if not (ratio_biased or frac_biased):
        return []
    reasons = []
    if ratio_biased:
        reasons.append(f"chosen responses average {c_mean:.1f} words vs {r_mean:.1f} for rejected ({ratio:.2f}x)")
    if frac_biased:
        reasons.append(f"the chosen response is the longer one in {_pct(frac)} of pairs that differ in length")
    toward = "longer" if (ratio > 1 if ratio_biased else frac > 0.5) else "shorter"
    other = "shorter" if toward == "longer" else "longer"
    return [
        _flag(
            "length_bias",
            "warning",
            longer if toward == "longer" else chosen < rejected,
            f"Length bias: {' and '.join(reasons)}. DPO will learn that {toward} is better and the model drifts "
            f"{'verbose' if toward == 'longer' else 'terse'}: add pairs where the {other} answer wins, drop some of "
            "the biased pairs, or use a length-normalized loss (SimPO).",
        )
    ]


def check_similarity(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """DPO: how alike chosen and rejected are (rapidfuzz ratio, 0-1); near-identical pairs carry weak signal."""
    chosen = [t.lower() for t in data.texts["chosen"]]
    rejected = [t.lower() for t in data.texts["rejected"]]
    sims = process.cpdist(chosen, rejected, scorer=fuzz.ratio, workers=-1).astype(np.float64) / 100.0
    very_similar, very_different = sims > th.very_similar, sims < th.very_different
    sim_frac, diff_frac = float(very_similar.mean()), float(very_different.mean())
    stats.update(
        similarity=np.round(sims, 4).tolist(),
        similarity_mean=round(float(sims.mean()), 4),
        similarity_median=round(float(np.median(sims)), 4),
        very_similar_fraction=round(sim_frac, 4),
        very_different_fraction=round(diff_frac, 4),
    )
    findings = []
    if sim_frac > th.max_very_similar_fraction:
        findings.append(
            _flag(
                "weak_signal",
                "warning",
                very_similar,
                f"{_pct(sim_frac)} of pairs are more than {th.very_similar:.0%} similar (chosen vs rejected text). "
                "Near-identical pairs carry little preference signal and make training noisy: drop the most similar "
                "pairs, or sample the two responses more differently (temperature, seed, model).",
            )
        )
    if diff_frac > th.max_very_different_fraction:
        findings.append(
            _flag(
                "very_different_pairs",
                "info",
                very_different,
                f"{_pct(diff_frac)} of pairs share almost no text (under {th.very_different:.0%} similar). That can be "
                "fine, but check that chosen and rejected answer the same prompt (shifted columns look like this).",
            )
        )
    return findings


def suggest_kto_weights(n_desirable: int, n_undesirable: int, th: Thresholds = Thresholds()) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) for KTOConfig so that the weighted class ratio
    desirable_weight * n_desirable / (undesirable_weight * n_undesirable) lies in [1, 4/3] (TRL's advice).

    Keeps TRL's defaults (1.0, 1.0) when they already fit; otherwise keeps the larger class at 1.0 and
    up-weights the smaller one to land mid-range (7/6). With one class empty there is nothing to weigh.
    """
    if n_desirable <= 0 or n_undesirable <= 0:
        return 1.0, 1.0
    ratio = n_desirable / n_undesirable
    if th.kto_ratio_low <= ratio <= th.kto_ratio_high:
        return 1.0, 1.0
    target = (th.kto_ratio_low + th.kto_ratio_high) / 2
    if ratio > th.kto_ratio_high:
        return 1.0, round(ratio / target, 2)
    return round(target / ratio, 2), 1.0


def check_kto_balance(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """KTO: desirable/undesirable counts, and the KTOConfig weights that balance them."""
    n_des = int((data.label & data.label_ok).sum())
    n_und = int((~data.label & data.label_ok).sum())
    w_des, w_und = suggest_kto_weights(n_des, n_und, th)
    weighted = (w_des * n_des) / (w_und * n_und) if n_und else None
    stats.update(
        desirable_count=n_des,
        undesirable_count=n_und,
        desirable_fraction=round(n_des / max(n_des + n_und, 1), 4),
        suggested_desirable_weight=w_des,
        suggested_undesirable_weight=w_und,
        weighted_ratio=None if weighted is None else round(weighted, 4),
        recommended_ratio_range=[th.kto_ratio_low, round(th.kto_ratio_high, 4)],
    )
    if n_des + n_und == 0 or (n_des and n_und and (w_des, w_und) == (1.0, 1.0)):
        return []
    if n_des == 0 or n_und == 0:
        have, missing = ("desirable", "undesirable") if n_und == 0 else ("undesirable", "desirable")
        return [
            Finding(
                "label_imbalance",
                "warning",
                f"All {n_des + n_und} completions are {have}; there are no {missing} examples. KTO learns from the "
                f"contrast between the two: add {missing} completions (e.g. the rejected side of preference pairs).",
                n_des + n_und,
            )
        ]
    return [
        Finding(
            "label_imbalance",
            "warning",
            f"{n_des} desirable vs {n_und} undesirable completions (ratio {n_des / n_und:.2f}). With equal weights KTO "
            f"over-learns the larger class: set desirable_weight={w_des} and undesirable_weight={w_und} in KTOConfig "
            f"(weighted ratio {weighted:.2f}, inside TRL's recommended [1, 4/3]).",
            abs(n_des - n_und),
        )
    ]


def check_kto_length_bias(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """KTO: desirable completions much longer (or shorter) than undesirable ones teaches length."""
    words = _word_counts(data.texts["completion"])
    des_mask, und_mask = data.label & data.label_ok, ~data.label & data.label_ok
    des, und = words[des_mask], words[und_mask]
    stats.update(
        prompt_words=_word_counts(data.prompt_text).tolist(),
        completion_words=words.tolist(),
        desirable_words=des.tolist(),
        undesirable_words=und.tolist(),
    )
    if len(des) < th.min_rows_per_class or len(und) < th.min_rows_per_class:
        return []
    d_mean, u_mean = float(des.mean()), float(und.mean())
    ratio = d_mean / max(u_mean, 1.0)
    stats.update(
        desirable_mean_words=round(d_mean, 2), undesirable_mean_words=round(u_mean, 2), length_ratio=round(ratio, 4)
    )
    if th.length_ratio_low <= ratio <= th.length_ratio_high:
        return []
    toward = "longer" if ratio > 1 else "shorter"
    return [
        _flag(
            "length_bias",
            "warning",
            des_mask,
            f"Length bias: desirable completions average {d_mean:.1f} words vs {u_mean:.1f} for undesirable "
            f"({ratio:.2f}x). KTO will learn that {toward} is better: add desirable examples of the other length, or "
            "drop some of the biased ones.",
        )
    ]


# --- duplicates --------------------------------------------------------------------------------------------

_PUNCT = re.compile(r"[^\w\s]+")


def normalize_prompt(text: str) -> str:
    """casefold, strip punctuation, collapse whitespace: "What's  AI?" and "whats ai" become the same key."""
    return " ".join(_PUNCT.sub("", text.casefold()).split())


def check_duplicates(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """Exact duplicate rows, repeated prompts, and (KTO) the same completion labelled both ways."""
    completion_keys = {name: [_key(v) for v in values] for name, values in data.completions.items()}
    prompts = pd.Series(data.prompt_keys)
    parts = [data.prompt_keys, *completion_keys.values()]
    if data.kind == "kto":
        parts.append(["1" if x else "0" for x in data.label])
    dup_rows = pd.Series(["\x1e".join(p) for p in zip(*parts)]).duplicated().to_numpy()
    repeat = prompts.duplicated().to_numpy() & ~dup_rows
    n_dup_prompts = int((prompts.value_counts() > 1).sum())
    stats.update(
        unique_prompts=int(prompts.nunique()),
        duplicate_rows=int(dup_rows.sum()),
        duplicate_prompts=n_dup_prompts,
        repeated_prompt_rows=int(repeat.sum()),
    )
    findings = []
    if dup_rows.any():
        findings.append(
            _flag(
                "duplicate_rows",
                "warning",
                dup_rows,
                f"{int(dup_rows.sum())} row(s) repeat an earlier row exactly. Duplicates are trained on twice and can "
                "leak between train and eval splits: drop them.",
            )
        )
    if repeat.any() and data.kind == "dpo":
        findings.append(
            _flag(
                "duplicate_prompts",
                "warning",
                repeat,
                f"{int(repeat.sum())} row(s) reuse a prompt from an earlier row with different responses "
                f"({n_dup_prompts} prompt(s) appear more than once). Fine if you collected several pairs per prompt on "
                "purpose; otherwise dedupe. Either way keep rows that share a prompt in the same split.",
            )
        )
    elif repeat.any():  # KTO rows share prompts by design (a good and a bad completion per prompt)
        findings.append(
            _flag(
                "duplicate_prompts",
                "info",
                repeat,
                f"{int(repeat.sum())} row(s) reuse a prompt from an earlier row (normal for KTO data made from pairs). "
                "Keep rows that share a prompt in the same split.",
            )
        )
    if data.kind == "kto":
        pc = pd.DataFrame(
            {"key": ["\x1e".join(p) for p in zip(data.prompt_keys, completion_keys["completion"])], "label": data.label}
        )[data.label_ok]
        labels_per_key = pc.groupby("key")["label"].nunique()
        conflicted = labels_per_key.index[labels_per_key > 1]
        stats["conflicting_labels"] = len(conflicted)
        if len(conflicted):
            mask = np.zeros(data.n, dtype=bool)
            mask[pc.index[pc["key"].isin(conflicted)].to_numpy()] = True
            findings.append(
                _flag(
                    "conflicting_labels",
                    "warning",
                    mask,
                    f"{len(conflicted)} prompt+completion(s) are labelled both desirable and undesirable "
                    f"({int(mask.sum())} rows). They pull training in opposite directions: settle the label or drop "
                    "them.",
                )
            )
    return findings


def check_near_duplicate_prompts(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    """Prompts that differ only in case, spacing or punctuation. Grouping by the normalized text (a hash
    join, no all-pairs comparison) keeps it linear at 100k+ rows."""
    cache: dict[str, str] = {}
    norm = [
        cache[k] if k in cache else cache.setdefault(k, normalize_prompt(t))
        for k, t in zip(data.prompt_keys, data.prompt_text)
    ]
    frame = pd.DataFrame({"raw": pd.factorize(pd.Series(data.prompt_keys))[0], "norm": norm})
    frame = frame[frame["norm"] != ""]
    groups = frame.groupby("norm", sort=False)["raw"]
    variants = groups.transform("nunique")
    near = np.zeros(data.n, dtype=bool)  # rows spelling a prompt differently from its first spelling
    near[frame.index[((variants > 1) & (frame["raw"] != groups.transform("first"))).to_numpy()]] = True
    n_groups = int(frame.loc[variants > 1, "norm"].nunique())
    stats.update(near_duplicate_prompt_rows=int(near.sum()), near_duplicate_prompt_groups=n_groups)
    if not near.any():
        return []
    return [
        _flag(
            "near_duplicate_prompts",
            "warning",
            near,
            f"{int(near.sum())} row(s) have a prompt that differs from another only in case, spacing or punctuation "
            f"({n_groups} group(s)). They are effectively duplicates: merge them, and keep them in the same split.",
        )
    ]


def check_nothing_to_train(data: _Data, stats: dict, th: Thresholds) -> list[Finding]:
    stats["usable_rows"] = int((~data.unusable).sum())
    if stats["usable_rows"]:
        return []
    return [
        Finding(
            "nothing_to_train",
            "error",
            f"None of the {data.n} rows is usable for training: every row "
            "has one of the errors above. Fix those first.",
            data.n,
        )
    ]
