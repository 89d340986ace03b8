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
                       description="Scores every pair without a human label by the policy's implicit reward "
                                   "margin (beta * log-ratio difference against the reference); near-zero margins "
                                   "and judge disagreements go first. Also reports, on already-labeled pairs, how "
                                   "many labels this order saves against a random order.")
    p.add_argument("--policy", required=True, help="current policy: a trained version or run folder")
    p.add_argument("--reference", default="smollm2", help="reference (SFT) model")
    p.add_argument("--beta", type=float, default=0.1)
    p.set_defaults(func=run)


def _margins(policy, reference, pairs, beta) -> dict[str, float]:
    margins = {}
    for start in tqdm(range(0, len(pairs), 16), desc="scoring pairs", unit="batch"):
        chunk = pairs[start:start + 16]
        for pair, margin in zip(chunk, implicit_margins(policy, reference, chunk, beta)):
            margins[pair.id] = float(margin)
    return margins


def run(args) -> int:
    if args.beta <= 0:
        raise UserError("--beta must be positive")
    ws = workspace(args)
    store = Store(ws.db_path)
    pool = GeneratorPool(ModelRegistry(ws, store))
    policy, reference = pool.get(args.policy), pool.get(args.reference)
    waiting = unlabeled_pairs(store)
    if not waiting:
        raise UserError("no unlabeled pairs in the store: sample some first")
    disputed = judge_disagreement(store)
    count = fill_queue(store, _margins(policy, reference, waiting, args.beta), disputed)
    print(f"queue: {count} pairs waiting, most uncertain first ({len(disputed)} with judge disagreement)")
    labeled = {row["pair_id"]: row["verdict"] for row in store.preference_rows()
               if row["verdict"] in ("A", "B") and not row["source"].startswith("judge:")}
    if labeled:
        known = [p for p in store.pairs() if p.id in labeled]
        saved = labels_saved(_margins(policy, reference, known, args.beta), labeled, disputed=disputed)
        if saved["informative"]:
            print(f"on {saved['pairs']} labeled pairs: {saved['active']} labels in this order vs "
                  f"{saved['random']:.1f} in random order to find {saved['target']} of the {saved['informative']} "
                  f"the policy gets wrong ({saved['saved_fraction']:.0%} fewer)")
    return 0
