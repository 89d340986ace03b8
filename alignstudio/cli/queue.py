"""`alignstudio queue`: order the unlabeled pairs for humans, most uncertain under the current policy first; set a
campaign's annotators per pair (`--overlap`) and show its progress (`--status`)."""

from __future__ import annotations

from tqdm import tqdm

from ..core.errors import UserError
from ..services.campaigns import QUEUE, SPLITS
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
    p.add_argument(
        "--overlap",
        type=int,
        default=None,
        metavar="N",
        help="annotators per pair in the campaign (--campaign): each pair is handed to N distinct annotators, "
        "never twice to one; snapshots then read the annotators' consensus",
    )
    p.add_argument(
        "--split",
        choices=SPLITS,
        default="drop",
        help="with --overlap: a pair whose annotators disagree is dropped (drop: only unanimous pairs are kept), "
        "or its majority kept with the agreement as its weight (weight)",
    )
    p.add_argument(
        "--campaign",
        default=QUEUE,
        help=f"the campaign --overlap and --status are about: a prompt set's name, or {QUEUE} (the default)",
    )
    p.add_argument(
        "--status",
        action="store_true",
        help="print each campaign's pairs: complete (labeled by N annotators), in progress, pending",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..services.labeling.active import labels_saved, margins_of, scorer

    if not (args.policy or args.judge or args.status or args.overlap is not None):
        raise UserError("give --policy RUN (or --judge implicit --judge-model RUN, or --judge reward), or --status")
    opened = services(args)
    campaigns = opened.labeling.campaigns
    if args.overlap is not None:
        settings = campaigns.configure(args.campaign, args.overlap, args.split)
        print(f"campaign {settings.campaign}: {settings.overlap} annotators per pair, disagreements: {settings.split}")
    if args.status:
        shown = campaigns.every_progress() if args.campaign == QUEUE else [campaigns.progress(args.campaign)]
        for progress in shown:
            print(f"{progress.campaign}: {progress.line()} (disagreements: {progress.split})")
    if not (args.policy or args.judge):
        return 0
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
