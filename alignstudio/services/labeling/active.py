"""Active labeling: ask humans first about the pairs the current model is least sure of.

The DPO policy defines an implicit reward r(y) = beta * (log pi(y|x) - log pi_ref(y|x)); a pair whose
reward margin r(a) - r(b) is near zero is one the policy cannot tell apart, so a human label there teaches
the most. Pairs on which judges disagree (different verdicts, or a verdict that flipped when the order was
swapped) go first as well. `labels_saved` measures, on pairs whose labels are already known, how many
fewer labels the uncertainty order needs than a random order to collect the same number of informative
labels (those the policy currently gets wrong).
"""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np

from ...core import access
from ...core.errors import UserError
from ...core.label_queue import LabelQueue
from ...core.store import PairRecord, Store
from ..judges.implicit import implicit_margins, implicit_reward, sequence_logprobs  # noqa: F401 - the judge's own


def judge_disagreement(store: Store) -> set[str]:
    """Pairs whose judge verdicts disagree with each other, or that a swapped-order judge called a tie."""
    verdicts: dict[str, set[str]] = defaultdict(set)
    for row in store.preference_rows():
        if row["source"].startswith("judge:"):
            verdicts[row["pair_id"]].add(row["verdict"])
    return {pair for pair, seen in verdicts.items() if len(seen & {"A", "B"}) > 1 or "tie" in seen}


def uncertainty_order(margins: dict[str, float], disputed: set[str] = frozenset()) -> list[str]:
    """Pair ids, most informative first: judge disputes, then by |margin| ascending."""
    return sorted(margins, key=lambda pid: (pid not in disputed, abs(margins[pid])))


def unlabeled_pairs(store: Store) -> list[PairRecord]:
    """Pairs no human or arena user has labeled yet (judged ones included: humans may overrule judges)."""
    human = {row["pair_id"] for row in store.preference_rows() if not row["source"].startswith("judge:")}
    return [p for p in store.pairs() if p.id not in human]


def fill_queue(store: Store, margins: dict[str, float], disputed: set[str] = frozenset()) -> int:
    order = uncertainty_order(margins, disputed)
    reasons = {pid: "judges disagree" if pid in disputed else f"margin {margins[pid]:+.3f}" for pid in order}
    return LabelQueue(store).fill({pid: rank for rank, pid in enumerate(order)}, reasons)


def labels_saved(
    margins: dict[str, float],
    truth: dict[str, str],
    *,
    target_fraction: float = 0.8,
    disputed: set[str] = frozenset(),
    trials: int = 200,
    seed: int = 0,
) -> dict:
    """On pairs with known labels (A/B), how many labels each order needs to collect `target_fraction` of the
    informative ones (where the policy's preference, sign of the margin, disagrees with the label)."""
    pairs = [pid for pid in margins if truth.get(pid) in ("A", "B")]
    informative = {pid for pid in pairs if (margins[pid] > 0) != (truth[pid] == "A") or margins[pid] == 0}
    if not informative:
        return {"pairs": len(pairs), "informative": 0, "active": 0, "random": 0.0, "saved": 0.0}
    need = max(1, int(np.ceil(target_fraction * len(informative))))

    def labels_needed(order: list[str]) -> int:
        found = 0
        for count, pid in enumerate(order, start=1):
            found += pid in informative
            if found >= need:
                return count
        return len(order)

    active = labels_needed(uncertainty_order({p: margins[p] for p in pairs}, disputed))
    rng = random.Random(seed)
    random_counts = []
    for _ in range(trials):
        order = pairs[:]
        rng.shuffle(order)
        random_counts.append(labels_needed(order))
    expected_random = float(np.mean(random_counts))
    return {
        "pairs": len(pairs),
        "informative": len(informative),
        "target": need,
        "active": active,
        "random": expected_random,
        "saved": expected_random - active,
        "saved_fraction": (expected_random - active) / expected_random,
    }


def margins_of(score, pairs: list[PairRecord], progress=None) -> dict[str, float]:
    """{pair id: margin} from `score(chunk) -> margins`, 16 pairs a batch (`progress(done, total)` after each)."""
    margins: dict[str, float] = {}
    for start in range(0, len(pairs), 16):
        chunk = pairs[start : start + 16]
        for pair, margin in zip(chunk, score(chunk)):
            margins[pair.id] = float(margin)
        if progress is not None:
            progress(min(start + 16, len(pairs)), len(pairs))
    return margins


def scorer(pool, *, judge: str | None = None, judge_model: str | None = None, policy: str | None = None):
    """The margin function asked for, pairs -> margins(A) - margins(B): a reward model's score difference (judge
    "reward", built by `judges.config.build_judge`), or a trained run's implicit reward margin (`policy`, or
    judge "implicit" with `judge_model`), with the run's own beta and reference (`judges.implicit.implicit_reward`).
    Building one can load a model: the role is checked first."""
    access.require_admin("filling the labeling queue")
    if judge and policy:
        raise UserError("give a policy or a judge, not both")
    if judge == "reward":
        from ..judges.config import JudgeConfig, build_judge

        reward = build_judge(JudgeConfig(kind="reward", model=judge_model), store=None, generators=pool)

        def by_reward(chunk):
            messages = [p.messages for p in chunk]
            scores = reward.scores_for(messages * 2, [p.text_a for p in chunk] + [p.text_b for p in chunk])
            return [a - b for a, b in zip(scores[: len(chunk)], scores[len(chunk) :])]

        return by_reward
    run = judge_model if judge == "implicit" else policy
    if not run:
        raise UserError("give a policy (a trained run), or judge implicit with a run, or judge reward")
    return implicit_reward(pool, run)


def queue_scorer(pool, by: str):
    """The Label tab's orders: "reward" = the newest reward model; "policy" = the newest trained model's implicit
    reward (its run's beta and reference)."""
    if by == "policy":
        access.require_admin("filling the labeling queue")
        newest = pool.registry.newest_trained()
        if not newest:
            raise UserError("no trained model yet: train one, or order by a reward model")
        return scorer(pool, policy=newest)
    if by != "reward":
        raise UserError(f"order the queue by policy or reward, not {by!r}")
    return scorer(pool, judge="reward")


def fill_queue_by(store: Store, score, progress=None) -> tuple[int, set[str]]:
    """Score every pair without a human label and queue them, most uncertain and judge-disputed first."""
    access.require_admin("filling the labeling queue")
    waiting = unlabeled_pairs(store)
    if not waiting:
        raise UserError("no unlabeled pairs in the store: sample some first")
    disputed = judge_disagreement(store)
    return fill_queue(store, margins_of(score, waiting, progress), disputed), disputed
