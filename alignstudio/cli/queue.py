"""`alignstudio queue`: order the unlabeled pairs for humans, most uncertain under the current policy first."""

from __future__ import annotations

from tqdm import tqdm

from ..core.errors import UserError
from .common import services


def register(sub) -> None:
    p = sub.add_parser(
        "queue",
        help="fill the human labeling queue in active-learning order",
        description="Scores every pair without a human label by a margin between its two responses "
        "and puts near-zero margins (the pairs the model cannot tell apart) and judge "
        "disagreements first. The margin is the policy's implicit reward margin (beta * "
        "log-ratio difference against the reference; --policy, or --judge implicit), or "
        "a reward model's score difference (--judge reward). Also reports, on already-"
        "labeled pairs, how many labels this order saves against a random order.",
    )
    p.add_argument(
        "--policy",
        default=None,
        help="current policy: a trained DPO/KTO version or run folder (its run's "
        "beta and reference model give the margin)",
    )
    p.add_argument(
        "--judge",
        choices=("implicit", "reward"),
        default=None,
        help="score with a judge instead: implicit (a DPO run, --judge-model RUN) or reward (a reward "
        "model, --judge-model NAME_OR_DIR; empty = the newest)",
    )
    p.add_argument("--judge-model", default=None, help="the judge's model (see --judge)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..services.labeling.active import labels_saved, margins_of, scorer

    if not (args.policy or args.judge):
        raise UserError("give --policy RUN (or --judge implicit --judge-model RUN, or --judge reward)")
    opened = services(args)
    store = opened.store
    score = scorer(opened.generators, judge=args.judge, judge_model=args.judge_model, policy=args.policy)
    bar = tqdm(desc="scoring pairs", unit="pair")
    count, disputed = opened.labeling.fill_queue(score, lambda done, total: bar.update(done - bar.n))
    bar.close()
    print(f"queue: {count} pairs waiting, most uncertain first ({len(disputed)} with judge disagreement)")
    labeled = {
        row["pair_id"]: row["verdict"]
        for row in store.preference_rows()
        if row["verdict"] in ("A", "B") and not row["source"].startswith("judge:")
    }
    if labeled:
        known = [p for p in store.pairs() if p.id in labeled]
        saved = labels_saved(margins_of(score, known), labeled, disputed=disputed)
        if saved["informative"]:
            print(
                f"on {saved['pairs']} labeled pairs: {saved['active']} labels in this order vs "
                f"{saved['random']:.1f} in random order to find {saved['target']} of the {saved['informative']} "
                f"the model gets wrong ({saved['saved_fraction']:.0%} fewer)"
            )
    return 0
