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
from ..services.judges.bulk import SCOPES, load_pair_file
from ..services.judges.config import JudgeConfig
from ..services.judges.prompt import clean_criteria
from ..services.judges.protocol import JudgeRun, PairItem
from ..services.judges.trust import Trust, vet_judge
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


def print_trust(trust: Trust) -> None:
    """The judge's measurement against people, as the service hears it (`on_trust`): its line, and on stderr the
    warning of a judge used at chance because it was forced."""
    print(trust.line(), flush=True)
    if trust.warning and trust.forced:
        print(trust.warning, file=sys.stderr, flush=True)


def vet(config: JudgeConfig, judge, store, cache) -> Trust:
    """Measure the judge against the human labels and print the figures; refuses a judge at chance unless forced.
    Only `eval` still calls this: once it calls `EvaluationService.evaluate_prompts(..., on_trust=print_trust)`
    (which also refuses a model judged by itself), this goes."""
    trust = vet_judge(judge, store, force=config.force, cache=cache)
    print_trust(trust)
    return trust


def measure(args) -> int:
    """`judge --measure`: the judge's agreement with people and its report card, kept for the Evaluate tab."""
    trust = services(args).evaluation.measure_judge(judge_config(args))
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
    config = judge_config(args)
    judge = opened.evaluation.judge(config)  # built (or refused) before the progress bar shows
    bar = tqdm(total=0, desc=f"judging ({judge.name})", unit="call")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:  # the Evaluate tab's door: the judge is measured against people (and gated) there
        if args.store:
            result, _ = opened.evaluation.judge_pairs(
                config, args.scope, min_kappa=args.min_kappa, limit=args.limit, progress=progress, built_judge=judge
            )
            run_, items, trust = result.run, None, result.trust
            if trust is not None:
                print(trust.line(), flush=True)
        else:
            items = file_pairs.items[: args.limit] if args.limit else file_pairs.items
            run_, trust = opened.evaluation.judge_file_pairs(
                config, items, progress=progress, built_judge=judge, on_trust=print_trust
            )
    finally:
        bar.close()
    if out is not None:
        if items is None:
            pairs = {p.id: p for p in opened.store.pairs()}
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
