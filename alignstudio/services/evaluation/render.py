"""An evaluation report as a person reads it: the summary in markdown, the pathology counts and the samples as
tables (the Evaluate tab, the Train tab's one-click evaluation and `alignstudio eval` print these)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import stats
from .style import FEATURE_TITLES

if TYPE_CHECKING:
    import pandas as pd

    from . import EvalReport


PATHOLOGY_COLUMNS = ["pathology", "model", "baseline", "of"]
SAMPLE_COLUMNS = ["id", "prompt", "model", "baseline", "outcome", "rationale"]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ci(interval: list, missing: str = "(too few judged prompts for an interval)") -> str:
    low, high = (list(interval or []) + [None, None])[:2]
    return f"[{_pct(low)}, {_pct(high)}]" if low is not None else missing


def style_line(style_model: dict) -> str:
    """The style model's coefficients (log-odds per standard deviation of the normalized difference, model
    minus base): positive means the judge favoured the answer with more of it."""
    coefficients = (style_model or {}).get("coefficients") or {}
    if not coefficients:
        return "none (no style feature varied between the answers)"
    return ", ".join(f"{FEATURE_TITLES.get(k, k)} {v:+.2f}" for k, v in coefficients.items())


def summary_markdown(report: EvalReport) -> str:
    r = report.results
    level = int(100 * r.confidence)
    older = not r.style_model  # a report from before the controlled intervals and the style control
    lc_ci = _ci(r.lc_win_rate_ci, "(no interval in this older report)") if older else _ci(r.lc_win_rate_ci)
    if older:
        style = "- style-controlled win rate: not in this older report (evaluate again to get it)"
    else:
        style = (
            f"- style-controlled win rate (length and markdown held equal): **{_pct(r.sc_win_rate)}**, {level}% CI "
            f"{_ci(r.sc_win_rate_ci)}; style coefficients (log-odds per SD, model minus base): "
            f"{style_line(r.style_model)}"
        )
    tax = report.alignment_tax
    if "change_pct" in tax:
        tax_line = (
            f"perplexity on held-out text: model {tax['model']['perplexity']:.2f}, baseline "
            f"{tax['baseline']['perplexity']:.2f} ({tax['change_pct']:+.1f}%)"
        )
    else:
        reason = tax.get("model", {}).get("skipped") or tax.get("baseline", {}).get("skipped") or "n/a"
        tax_line = f"perplexity: skipped ({reason})"
    usage = report.usage
    cost = f", ${usage['cost_usd']:.4f}" if usage.get("cost_usd") is not None else ""
    trust = report.judge_trust or {}
    # every reason to doubt the verdict first, loudly: a self-judged model, a forced or length-biased judge
    lines = [f"> **{warning}**\n" for warning in report.warnings]
    lines += [
        f"**{report.model}** vs **{report.baseline}** on {r.n} prompts, judged by "
        f"`{report.judge['name']}` in both orders",
        f"- wins / ties / losses: **{r.wins} / {r.ties} / {r.losses}**"
        + (f" ({r.failed} without a verdict)" if r.failed else ""),
        f"- win rate (ties count half): **{_pct(r.win_rate)}**, {level}% CI {_ci(r.win_rate_ci)}",
        f"- length-controlled win rate: **{_pct(r.lc_win_rate)}**, {level}% CI {lc_ci} "
        f"(length coefficient {r.length_model.get('length_coef')})",
        style,
        f"- judge position inconsistency: {_pct(r.position_inconsistency_rate)} of pairs; flips "
        f"{_pct(r.flip_rate)}; the first-shown answer won {_pct(r.first_position_rate)} of decisive calls; "
        f"parse failures {r.parse_failures}"
        + (f"; {r.identical_answers} identical answer pairs (ties, not judged)" if r.identical_answers else ""),
        f"- mean length (words): model {report.lengths['model_mean_words']}, baseline "
        f"{report.lengths['baseline_mean_words']}",
        f"- alignment tax: {tax_line}",
        f"- judge vs people: {trust.get('line') or 'not measured'}",
        f"- judge {card_line(trust.get('card'))}",
        f"- judge usage: {usage['calls']} calls ({usage['cached']} cached), {usage['input_tokens']} input / "
        f"{usage['output_tokens']} output tokens{cost}",
    ]
    return "\n".join(lines)


def card_line(card: dict | None) -> str:
    """The judge's report card in one line (`judges.report_card`), or why there is none."""
    from ..judges.report_card import ReportCard

    if not card:
        return "report card: none (the judge was not measured against people)"
    return ReportCard(**card).line()


def progress_line(fraction: float, desc: str, elapsed_s: float) -> str:
    """What an evaluation shows while it runs: the stage, the share done, the time taken and, once a few percent
    and seconds are done, a time left extrapolated from them (before that, an estimate would be noise)."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    left = (
        f", about {elapsed_s * (1 - fraction) / fraction:.0f} s left"
        if fraction >= 0.05 and elapsed_s >= 3 and fraction < 1
        else ""
    )
    return f"*Running:* {desc} ({100 * fraction:.0f}% done, {elapsed_s:.0f} s so far{left})"


def pathology_table(report: EvalReport) -> pd.DataFrame:
    import pandas as pd

    p = report.pathologies
    return pd.DataFrame(
        [
            {"pathology": name, "model": p["model"][name], "baseline": p["baseline"][name], "of": p["of"]}
            for name in stats.PATHOLOGIES
        ],
        columns=PATHOLOGY_COLUMNS,
    )


def samples_table(report: EvalReport, limit: int | None = None) -> pd.DataFrame:
    import pandas as pd

    rows = report.samples[:limit] if limit else report.samples
    return pd.DataFrame(
        [
            {
                "id": s["id"],
                "prompt": s["prompt"],
                "model": s["model"],
                "baseline": s["baseline"],
                "outcome": s["outcome"],
                "rationale": s["rationale"],
            }
            for s in rows
        ],
        columns=SAMPLE_COLUMNS,
    )
