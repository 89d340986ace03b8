"""Row checks: malformed rows, empty and short responses, identical pairs, length bias, similarity, and whether
anything is left to train on. The prepared rows are `prepared`'s; KTO's checks are `kto`'s; duplicates are
`duplicates`'."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from rapidfuzz import fuzz, process

from .prepared import _Data, _word_counts
from .report import (
    MAX_EXAMPLES,
    Finding,
    Thresholds,
    _flag,
    _pct,
)

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
