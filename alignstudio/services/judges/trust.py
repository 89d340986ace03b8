"""No judge is trusted before it is measured: its agreement with people on held-out human labels.

Before a judge labels the store, runs an evaluation or drives a round, `vet_judge` judges (both orders) a sample
of the pairs whose human consensus is known and the judge did not train on (a reward model's or a DPO run's
training prompts are left out), and reports percent agreement, Cohen's kappa, position bias (how often the
response shown first won a decisive single-order verdict) and the count it rests on. A judge at chance (kappa
below 0.2 or position bias above 80%, on at least `MIN_LABELS` pairs) is refused with those figures unless the
caller forces it; a forced judge's `Trust.warning` goes into every report it produces. With too few human labels
the measurement says so instead of refusing.

`default_judge` picks the best judge available when none is named: the newest trained reward model, else a
configured remote judge (`ALIGNSTUDIO_JUDGE`, `ALIGNSTUDIO_JUDGE_MODEL`, `ALIGNSTUDIO_JUDGE_BASE_URL`), else
it refuses with one line saying how to get one. It never silently picks a judge with no signal.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass

from ...core.store import Store
from . import Judge
from .agreement import compare, human_consensus
from .protocol import PairItem, judge_pairs
from .refusals import TRAIN_REWARD_IN_APP, Refusal, field_label
from .report_card import report_card

MIN_LABELS = 20  # fewer held-out human labels: too few to measure
MAX_SAMPLE = 200  # the measurement's sample (bounded cost for remote judges; cached afterwards)
KAPPA_FLOOR = 0.2  # below: at chance
POSITION_CEILING = 0.8  # above: the order decides, not the content
ENV_KIND, ENV_MODEL, ENV_URL = "ALIGNSTUDIO_JUDGE", "ALIGNSTUDIO_JUDGE_MODEL", "ALIGNSTUDIO_JUDGE_BASE_URL"
HOW_TO_GET_ONE = (
    f"no judge with measured signal is available: label at least 50 pairs and train a reward model "
    f"(`alignstudio train --method reward --data SNAPSHOT`), or configure a server ({ENV_KIND}=vllm "
    f"{ENV_MODEL}=NAME [{ENV_URL}=URL], or --judge openai --judge-model NAME)"
)
HOW_TO_GET_ONE_IN_APP = (
    f"No judge with measured signal is available. To get one here: label at least 50 pairs, then "
    f"{TRAIN_REWARD_IN_APP} and pick it as the judge; or choose a server judge (OpenAI, Anthropic or an "
    'OpenAI-compatible server) in the "Judge backend" field and name its model in the "Judge model" field.'
)


@dataclass
class Trust:
    """A judge's measured agreement with people. status: trusted | at chance | unmeasured."""

    judge: str
    count: int
    agreement: float | None
    kappa: float | None
    position_bias: float | None
    status: str
    note: str
    forced: bool = False
    excluded_trained: int = 0
    card: dict | None = None  # report_card.ReportCard.to_dict(): its biases next to the people's

    @property
    def warning(self) -> str | None:
        return " | ".join(self.warnings) or None

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.status == "at chance" and self.forced:
            found.append(f"WARNING: {self.judge} is at chance against people ({self.figures()}) and was used by force")
        if self.status == "unmeasured":
            found.append(f"{self.judge} is unmeasured: {self.note}")
        found += (self.card or {}).get("warnings") or []  # a length bias beyond the people's
        return found

    def figures(self) -> str:
        pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        kappa = "n/a" if self.kappa is None else f"{self.kappa:.2f}"
        return (
            f"agreement {pct(self.agreement)}, Cohen's kappa {kappa}, position bias {pct(self.position_bias)} "
            f"on {self.count} held-out human labels"
        )

    def line(self) -> str:
        """One line for the CLI, the reports and the UI."""
        if self.status == "unmeasured":
            return f"judge {self.judge}: {self.note}"
        return f"judge {self.judge}: {self.status}: {self.figures()}" + (" (forced)" if self.forced else "")

    def to_dict(self) -> dict:
        return asdict(self) | {"warning": self.warning, "warnings": self.warnings, "line": self.line()}


def heldout_human_pairs(
    store: Store, exclude_prompts: set[str] = frozenset(), limit: int = MAX_SAMPLE, seed: int = 0
) -> tuple[list[PairItem], dict[str, str], int]:
    """(pairs, consensus verdicts, how many were left out as training prompts) for the measurement."""
    from ...training.reward import prompt_digest

    rows = store.preference_rows()
    consensus = human_consensus(rows)
    pairs = {p.id: p for p in store.pairs() if p.id in consensus}
    keep, excluded = [], 0
    for pid in sorted(pairs):
        if exclude_prompts and prompt_digest(pairs[pid].messages) in exclude_prompts:
            excluded += 1
            continue
        keep.append(pid)
    random.Random(seed).shuffle(keep)
    keep = keep[:limit]
    items = [PairItem(pid, pairs[pid].messages, pairs[pid].text_a, pairs[pid].text_b) for pid in keep]
    return items, {pid: consensus[pid] for pid in keep}, excluded


def measure_judge(judge: Judge, store: Store, *, limit: int = MAX_SAMPLE, seed: int = 0, cache=None) -> Trust:
    """Judge held-out human-labeled pairs (both orders) and compare with the human consensus."""
    items, truth, excluded = heldout_human_pairs(store, getattr(judge, "trained_prompts", set()), limit, seed)
    held = f" ({excluded} pairs on its training prompts left out)" if excluded else ""
    if len(items) < MIN_LABELS:
        return Trust(
            judge.source,
            len(items),
            None,
            None,
            None,
            "unmeasured",
            f"too few human labels to measure it: {len(items)} held-out human-labeled pairs, "
            f"{MIN_LABELS} needed{held}; label more pairs",
            excluded_trained=excluded,
        )
    started = time.monotonic()
    run = judge_pairs(judge, items, cache=cache)
    seconds = time.monotonic() - started
    verdicts = {j.key: j.winner for j in run.judgments if j.winner is not None}
    stats = compare(truth, verdicts)
    position = run.summary().first_position_rate
    card = report_card(
        judge.source,
        run,
        items,
        truth,
        [r for r in store.preference_rows() if r["source"] == "human"],
        seconds=seconds,
        agreement=stats.agreement,
        kappa=stats.kappa,
        remote=judge.remote,
    ).to_dict()
    if cache is not None:
        cache.put_card(judge.source, card)
    if len(set(truth.values())) < 2:
        return Trust(
            judge.source,
            stats.shared,
            stats.agreement,
            None,
            position,
            "unmeasured",
            f"the human labels have one class only ({next(iter(truth.values()))}): kappa is undefined"
            f"{held}; label more varied pairs",
            excluded_trained=excluded,
            card=card,
        )
    at_chance = (
        stats.kappa is None or stats.kappa < KAPPA_FLOOR or (position is not None and position > POSITION_CEILING)
    )
    note = (
        f"kappa below {KAPPA_FLOOR} or position bias above {100 * POSITION_CEILING:.0f}%"
        if at_chance
        else "agrees with people beyond chance"
    ) + held
    return Trust(
        judge.source,
        stats.shared,
        stats.agreement,
        stats.kappa,
        position,
        "at chance" if at_chance else "trusted",
        note,
        excluded_trained=excluded,
        card=card,
    )


def vet_judge(judge: Judge, store: Store, *, force: bool = False, cache=None, seed: int = 0) -> Trust:
    """Measure the judge; refuse one at chance (UserError with the figures) unless `force`."""
    trust = measure_judge(judge, store, cache=cache, seed=seed)
    if trust.status == "at chance":
        if not force:
            refused = f"{judge.source} is at chance against people and is refused: {trust.figures()}"
            raise Refusal(
                f"{refused}. Train a reward model or use a stronger judge; force it with --force-judge and its "
                "reports will say so",
                app=f"{refused}. To fix it: {TRAIN_REWARD_IN_APP}, or choose a stronger judge; or tick "
                f'"{field_label("force")}" and its reports will say so.',
            )
        trust.forced = True
    return trust


def default_judge() -> tuple[str, str | None, str | None]:
    """(kind, model, base_url) of the best judge available when none is named. A trained reward model is found
    by `make_judge("reward")` itself (it takes the newest); this only decides between reward and a configured
    remote judge, and refuses when the store has neither (the caller checks the reward side)."""
    kind = os.environ.get(ENV_KIND, "").strip()
    if kind:
        return kind, os.environ.get(ENV_MODEL, "").strip() or None, os.environ.get(ENV_URL, "").strip() or None
    raise Refusal(HOW_TO_GET_ONE, app=HOW_TO_GET_ONE_IN_APP)


def choose_judge(kind: str | None, model: str | None, store: Store) -> tuple[str, str | None, str | None]:
    """The judge to build: the one named, else the newest reward model, else a configured remote judge, else a
    one-line refusal."""
    if (kind or "").strip():
        return kind.strip(), model, None
    from ...training.reward import newest_reward_model

    newest = newest_reward_model(store)
    if newest:
        return "reward", newest, None
    return default_judge()
