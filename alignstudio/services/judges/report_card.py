"""A judge's report card, as AlpacaEval's evaluator table has it: its biases next to the people's, on the same pairs.

Measured with the agreement (`trust.measure_judge`) on the held-out human-labeled pairs, both orders:

- P(first): how often the answer shown first won a decisive single-order verdict (the judge: each order of each
  pair; people: each decisive human label whose shown-left side is known);
- P(longer): how often the longer answer (in words) won a decisive verdict, over pairs whose lengths differ (the
  judge: its combined verdict; people: their consensus);
- P(markdown): the same for the answer with more markdown elements (headers, bold spans, list items, counted by
  `evaluation.style.style_features`);
- seconds and (where the SDK reports usage) tokens per 1,000 pairs judged in both orders. Tokens are the
  verdicts' own counts, cached ones included, so a cached re-measurement still shows what judging costs.

A judge whose P(longer) exceeds the people's by more than `LENGTH_BIAS_MARGIN` carries a warning into every
report it produces (through `Trust.warning`). Cards are kept per judge in the judge cache, for the Evaluate tab.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from . import SIDES
from .protocol import JudgeRun, PairItem

LENGTH_BIAS_MARGIN = 0.10  # P(longer) above the people's by more than this: a length-biased judge
COLUMNS = {
    "judge": "judge",
    "pairs": "pairs",
    "agreement": "agreement",
    "kappa": "kappa",
    "judge_first": "P(first) judge",
    "human_first": "P(first) people",
    "judge_longer": "P(longer) judge",
    "human_longer": "P(longer) people",
    "judge_markdown": "P(more markdown) judge",
    "human_markdown": "P(more markdown) people",
    "seconds_per_1000": "seconds / 1000 pairs",
    "tokens_per_1000": "tokens / 1000 pairs",
}


@dataclass
class ReportCard:
    judge: str
    pairs: int
    agreement: float | None
    kappa: float | None
    judge_first: float | None
    human_first: float | None
    judge_longer: float | None
    human_longer: float | None
    judge_markdown: float | None
    human_markdown: float | None
    seconds_per_1000: float | None
    tokens_per_1000: float | None
    margin: float = LENGTH_BIAS_MARGIN
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """The card in one line, for the CLI and the report header."""
        pct = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"  # noqa: E731
        number = lambda v: "n/a" if v is None else f"{v:,.0f}"  # noqa: E731
        return (
            f"report card of {self.judge} on {self.pairs} pairs (judge / people): prefers the first-shown answer "
            f"{pct(self.judge_first)} / {pct(self.human_first)}, the longer {pct(self.judge_longer)} / "
            f"{pct(self.human_longer)}, the one with more markdown {pct(self.judge_markdown)} / "
            f"{pct(self.human_markdown)}; {number(self.seconds_per_1000)} s and {number(self.tokens_per_1000)} "
            "tokens per 1,000 pairs"
        )


def _rate(hits: list[bool]) -> float | None:
    return round(sum(hits) / len(hits), 4) if hits else None


def _prefers_more(verdicts: dict[str, str], amounts: dict[str, tuple[float, float]]) -> float | None:
    """How often the side with more of something won, over decisive verdicts where the two sides differ."""
    hits = []
    for key, winner in verdicts.items():
        a, b = amounts[key]
        if winner in SIDES and a != b:
            hits.append((winner == "A") == (a > b))
    return _rate(hits)


def _markdown_count(text: str) -> int:
    from ..evaluation.style import style_features

    return style_features(text).markdown


def length_warning(card: ReportCard) -> str | None:
    if card.judge_longer is None or card.human_longer is None:
        return None
    if card.judge_longer - card.human_longer <= card.margin:
        return None
    return (
        f"LENGTH BIAS: {card.judge} prefers the longer answer in {100 * card.judge_longer:.0f}% of decisive "
        f"pairs, people in {100 * card.human_longer:.0f}% of the same pairs (more than {100 * card.margin:.0f} "
        "points apart): its wins may reward length, not quality"
    )


def report_card(
    judge_name: str,
    run: JudgeRun,
    items: list[PairItem],
    truth: dict[str, str],
    human_rows: list[dict],
    *,
    seconds: float,
    agreement: float | None,
    kappa: float | None,
    remote: bool,
) -> ReportCard:
    """The card of one measurement: `run` judged `items` (both orders); `truth` is the people's consensus per
    pair and `human_rows` their individual labels (`verdict`, `shown_left`, `pair_id`)."""
    by_key = {item.key: item for item in items}
    judged = {j.key: j.winner for j in run.judgments if j.winner is not None and not j.identical}
    first_won = [j.first.winner == "A" for j in run.judgments if not j.identical and j.first.winner in SIDES]
    first_won += [j.second.winner == "A" for j in run.judgments if not j.identical and j.second.winner in SIDES]
    words = {k: (len(by_key[k].response_a.split()), len(by_key[k].response_b.split())) for k in judged}
    marks = {k: (_markdown_count(by_key[k].response_a), _markdown_count(by_key[k].response_b)) for k in judged}
    people = {k: truth[k] for k in judged if k in truth}
    latest = {(str(r["pair_id"]), r.get("annotator")): r for r in human_rows}  # a relabel replaces the label
    shown_first = [
        r["verdict"] == r["shown_left"]
        for (pid, _), r in latest.items()
        if pid in judged and r["verdict"] in SIDES and r.get("shown_left") in SIDES
    ]
    tokens = sum(v.usage.input_tokens + v.usage.output_tokens for j in run.judgments for v in (j.first, j.second))
    per_1000 = 1000.0 / len(items) if items else 0.0
    card = ReportCard(
        judge=judge_name,
        pairs=len(judged),
        agreement=agreement,
        kappa=kappa,
        judge_first=_rate(first_won),
        human_first=_rate(shown_first),
        judge_longer=_prefers_more(judged, words),
        human_longer=_prefers_more(people, words),
        judge_markdown=_prefers_more(judged, marks),
        human_markdown=_prefers_more(people, marks),
        seconds_per_1000=round(seconds * per_1000, 1) if items else None,
        tokens_per_1000=round(tokens * per_1000, 1) if remote and tokens else None,
    )
    card.warnings = [w for w in (length_warning(card),) if w]
    return card
