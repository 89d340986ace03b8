"""`alignstudio queue`: order the unlabeled pairs for humans, most uncertain under the current policy first."""

from __future__ import annotations

from tqdm import tqdm

from ..core.errors import UserError
from ..core.registry import ModelRegistry
from ..core.store import Store
from ..services.active import fill_queue, implicit_margins, judge_disagreement, labels_saved, unlabeled_pairs
from ..services.generators import GeneratorPool
from .common import workspace


def register(sub) -> None:
    p = sub.add_parser("queue", help="fill the human labeling queue in active-learning order",
                       description="Scores every pair without a human label by a margin between its two responses "
                                   "and puts near-zero margins (the pairs the model cannot tell apart) and judge "
                                   "disagreements first. The margin is the policy's implicit reward margin (beta * "
                                   "log-ratio difference against the reference; --policy, or --judge implicit), or "
                                   "a reward model's score difference (--judge reward). Also reports, on already-"
                                   "labeled pairs, how many labels this order saves against a random order.")
    p.add_argument("--policy", default=None, help="current policy: a trained version or run folder")
    p.add_argument("--reference", default="smollm2", help="reference (SFT) model")
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--judge", choices=("implicit", "reward"), default=None,
                   help="score with a judge instead: implicit (a DPO run, --judge-model RUN) or reward (a reward "
                        "model, --judge-model NAME_OR_DIR; empty = the newest)")
    p.add_argument("--judge-model", default=None, help="the judge's model (see --judge)")
    p.set_defaults(func=run)


def _margins(score, pairs) -> dict[str, float]:
    """{pair id: margin} from `score(chunk) -> margins`, 16 pairs a batch."""
    margins = {}
    for start in tqdm(range(0, len(pairs), 16), desc="scoring pairs", unit="batch"):
        chunk = pairs[start:start + 16]
        for pair, margin in zip(chunk, score(chunk)):
            margins[pair.id] = float(margin)
    return margins


def _scorer(args, pool):
    """The margin function the arguments ask for: a pair -> margin(A) - margin(B)."""
    if args.judge == "reward":
        from ..services.judges import make_judge

        judge = make_judge("reward", args.judge_model, generators=pool)

        def by_reward(chunk):
            messages = [p.messages for p in chunk]
            scores = judge.scores_for(messages * 2, [p.text_a for p in chunk] + [p.text_b for p in chunk])
            return [a - b for a, b in zip(scores[:len(chunk)], scores[len(chunk):])]

        return by_reward
    policy_name = args.judge_model if args.judge == "implicit" else args.policy
    if not policy_name:
        raise UserError("give --policy RUN (or --judge implicit --judge-model RUN, or --judge reward)")
    policy, reference = pool.get(policy_name), pool.get(args.reference)
    return lambda chunk: implicit_margins(policy, reference, chunk, args.beta)


def run(args) -> int:
    if args.beta <= 0:
        raise UserError("--beta must be positive")
    if args.judge and args.policy:
        raise UserError("give --policy or --judge, not both")
    ws = workspace(args)
    store = Store(ws.db_path)
    pool = GeneratorPool(ModelRegistry(ws, store))
    waiting = unlabeled_pairs(store)
    if not waiting:
        raise UserError("no unlabeled pairs in the store: sample some first")
    score = _scorer(args, pool)
    disputed = judge_disagreement(store)
    count = fill_queue(store, _margins(score, waiting), disputed)
    print(f"queue: {count} pairs waiting, most uncertain first ({len(disputed)} with judge disagreement)")
    labeled = {row["pair_id"]: row["verdict"] for row in store.preference_rows()
               if row["verdict"] in ("A", "B") and not row["source"].startswith("judge:")}
    if labeled:
        known = [p for p in store.pairs() if p.id in labeled]
        saved = labels_saved(_margins(score, known), labeled, disputed=disputed)
        if saved["informative"]:
            print(f"on {saved['pairs']} labeled pairs: {saved['active']} labels in this order vs "
                  f"{saved['random']:.1f} in random order to find {saved['target']} of the {saved['informative']} "
                  f"the model gets wrong ({saved['saved_fraction']:.0%} fewer)")
    return 0
