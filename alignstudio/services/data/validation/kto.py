"""KTO checks: the desirable/undesirable balance (and the KTOConfig weights that fix it) and length bias."""

from __future__ import annotations

from .prepared import _Data, _word_counts
from .report import Finding, Thresholds, _flag


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
