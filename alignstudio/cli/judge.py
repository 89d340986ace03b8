"""`alignstudio judge`: an AI judge on a file of pairs or on the store's pairs, in both orders.

With --pairs FILE the verdicts go to --out (JSONL); with --store the store's pairs in --scope are judged and each
verdict is recorded as a preference event with source judge:NAME (and also written to --out when given). With
--measure the judge is only measured against the held-out human labels: its agreement and its report card (its
preference for the first-shown, the longer and the more formatted answer next to the people's, and its cost).
API keys come from the environment (OPENAI_API_KEY / ANTHROPIC_API_KEY, or the variable --api-key-env names);
there is deliberately no flag that takes a key, so none lands in shell history or the process list.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from ..core.errors import UserError
from ..services.evaluation.render import card_line
from ..services.judges.bulk import SCOPES, judge_store, load_pair_file
from ..services.judges.config import JudgeConfig
from ..services.judges.prompt import clean_criteria
from ..services.judges.protocol import JudgeCache, JudgeRun, PairItem, judge_pairs
from ..services.judges.trust import Trust, measure_judge, vet_judge
from .common import add_setting, services


def add_judge_args(parser) -> None:
    """The judge flags, built from JudgeConfig's fields (criteria come from --criteria FILE or --criterion)."""
    group = parser.add_argument_group("judge")
    add_setting(group, JudgeConfig, "kind", "--judge", dest="judge", metavar="KIND")
    add_setting(group, JudgeConfig, "model", "--judge-model", dest="judge_model")
    add_setting(group, JudgeConfig, "force", "--force-judge", dest="force_judge")
    add_setting(group, JudgeConfig, "base_url", "--judge-base-url", dest="judge_base_url")
    add_setting(group, JudgeConfig, "key_env", "--api-key-env", dest="api_key_env", metavar="VAR")
    group.add_argument(
        "--criteria",
        default=None,
        metavar="FILE",
        help="judge criteria, one per line (default: helpfulness, accuracy, clarity)",
    )
    group.add_argument(
        "--criterion",
        action="append",
        default=None,
        metavar="TEXT",
        help="a judge criterion (repeat for several; replaces the defaults)",
    )
    for name in ("concurrency", "timeout", "max_retries", "price_in", "price_out"):
        add_setting(group, JudgeConfig, name)
    add_setting(group, JudgeConfig, "injection_guard")


def criteria_from(args):
    if args.criteria and args.criterion:
        raise UserError("give --criteria FILE or --criterion TEXT, not both")
    if args.criteria:
        path = Path(args.criteria)
        if not path.is_file():
            raise UserError(f"criteria file {path} does not exist")
        return tuple(clean_criteria(path.read_text(encoding="utf-8")))
    if args.criterion:
        return tuple(clean_criteria(args.criterion))
    return None


def judge_config(args) -> JudgeConfig:
    """The JudgeConfig the judge flags describe."""
    return JudgeConfig(
        kind=args.judge,
        model=args.judge_model,
        base_url=args.judge_base_url,
        key_env=args.api_key_env,
        criteria=criteria_from(args),
        force=args.force_judge,
        timeout=args.timeout,
        max_retries=args.max_retries,
        price_in=args.price_in,
        price_out=args.price_out,
        concurrency=args.concurrency,
        injection_guard=args.injection_guard,
    )


def vet(config: JudgeConfig, judge, store, cache) -> Trust:
    """Measure the judge against the human labels and print the figures; refuses a judge at chance unless forced."""
    trust = vet_judge(judge, store, force=config.force, cache=cache)
    print(trust.line(), flush=True)
    if trust.warning and trust.forced:
        print(trust.warning, file=sys.stderr, flush=True)
    return trust


def measure(args) -> int:
    """`judge --measure`: the judge's agreement with people and its report card, kept for the Evaluate tab."""
    opened = services(args)
    judge = opened.evaluation.judge(judge_config(args))
    trust = measure_judge(judge, opened.store, cache=JudgeCache.for_workspace(opened.workspace))
    print(trust.line())
    print(card_line(trust.card))
    for warning in trust.warnings:
        print(warning)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "judge",
        help="judge pairs with an AI judge (both orders), into a file or the store",
        description="Each pair is judged twice, once with the order swapped; the same winner both "
        "times is a win, anything else a tie. Malformed replies count as failures.",
    )
    p.add_argument("--pairs", default=None, help="pairs file: prompt + response_a/response_b (or chosen/rejected)")
    p.add_argument("--store", action="store_true", help="judge the store's pairs and record the verdicts as events")
    p.add_argument(
        "--scope",
        choices=list(SCOPES),
        default="unlabeled",
        help="with --store: " + "; ".join(f"{k} = {v}" for k, v in SCOPES.items()),
    )
    p.add_argument(
        "--min-kappa",
        type=float,
        default=None,
        help="with --store: refuse unless the judge's Cohen's kappa against human labels reaches this",
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="only measure the judge against the held-out human labels: agreement, kappa and its report card",
    )
    p.add_argument("--out", default=None, help="verdicts JSONL (required with --pairs)")
    p.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    add_judge_args(p)
    p.set_defaults(func=run)


def _rows(run: JudgeRun, items, judge_name: str) -> list[dict]:
    rows = []
    for item, j in zip(items, run.judgments):
        rows.append(
            {
                "id": item.key,
                "prompt": item.messages,
                "response_a": item.response_a,
                "response_b": item.response_b,
                "verdict": j.winner,
                "consistent": j.consistent,
                "first": j.first.winner,
                "second": j.second_winner,
                "guarded": j.guarded,
                "rationale": j.rationale,
                "error": j.error,
                "judge": judge_name,
            }
        )
    return rows


def run(args) -> int:
    from ..services.data.snapshots import write_records  # a verdicts file is written as a snapshot's files are

    if args.measure:
        if args.pairs or args.store or args.out:
            raise UserError("--measure takes no --pairs, --store or --out: it judges the held-out human labels")
        return measure(args)
    if bool(args.pairs) == bool(args.store):
        raise UserError("give --pairs FILE or --store (one of them), or --measure")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    out = Path(args.out) if args.out else None
    if out is None and args.pairs:
        raise UserError("--out FILE.jsonl is required with --pairs")
    if out is not None and out.suffix.lower() != ".jsonl":
        raise UserError(f"--out must be a .jsonl file, got {out.name}")
    if args.min_kappa is not None and not args.store:
        raise UserError("--min-kappa applies to --store (bulk labeling)")
    file_pairs = load_pair_file(args.pairs) if args.pairs else None  # bad input fails before models load
    opened = services(args)
    store = opened.store
    config = judge_config(args)
    judge = opened.evaluation.judge(config)
    cache = JudgeCache.for_workspace(opened.workspace)
    trust = None if args.store else vet(config, judge, store, cache)  # --store: judge_store measures it itself
    bar = tqdm(total=0, desc=f"judging ({judge.name})", unit="call")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        if args.store:
            result = judge_store(
                store,
                judge,
                cache=cache,
                scope=args.scope,
                min_kappa=args.min_kappa,
                limit=args.limit,
                concurrency=config.concurrency,
                progress=progress,
                injection_guard=config.injection_guard,
                force=config.force,
            )
            run_, items, trust = result.run, None, result.trust
            if trust is not None:
                print(trust.line(), flush=True)
        else:
            items = file_pairs.items[: args.limit] if args.limit else file_pairs.items
            run_ = judge_pairs(
                judge,
                items,
                cache=cache,
                concurrency=config.concurrency,
                progress=progress,
                injection_guard=config.injection_guard,
            )
            cache.record(judge.name, run_.judgments, prefix="file:")
    finally:
        bar.close()
    if out is not None:
        if items is None:
            pairs = {p.id: p for p in store.pairs()}
            items = [
                PairItem(j.key, pairs[j.key].messages, pairs[j.key].text_a, pairs[j.key].text_b) for j in run_.judgments
            ]
        rows = _rows(run_, items, judge.source)
        if trust is not None and trust.warning:
            for row in rows:
                row["judge_warning"] = trust.warning
        write_records(rows, out)
    summary = run_.summary()
    print(f"{judge.source}: {summary.pairs} pairs, {summary.line()}")
    if args.store:
        print(f"recorded {len(result.events)} preference events with source {judge.source}")
    if file_pairs is not None and file_pairs.labeled:
        judged = [j for j in run_.judgments if j.winner is not None]
        if judged:
            agree = sum(j.winner == "A" for j in judged) / len(judged)
            print(f"agreement with the file's chosen/rejected labels: {100 * agree:.1f}% of {len(judged)} judged pairs")
    if out is not None:
        print(f"wrote {len(run_.judgments)} verdicts to {out}")
    if trust is not None and trust.warning:
        print(trust.warning)
    return 0
