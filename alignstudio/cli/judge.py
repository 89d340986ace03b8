"""`alignstudio judge`: an AI judge on a file of pairs or on the store's pairs, in both orders.

With --pairs FILE the verdicts go to --out (JSONL); with --store the store's pairs in --scope are judged and each
verdict is recorded as a preference event with source judge:NAME (and also written to --out when given).
API keys come from the environment (OPENAI_API_KEY / ANTHROPIC_API_KEY, or the variable --api-key-env names);
there is deliberately no flag that takes a key, so none lands in shell history or the process list.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from ..core.errors import UserError
from ..core.formats import write_records
from ..core.registry import ModelRegistry
from ..core.store import Store
from ..services.sampling.generators import GeneratorPool
from ..services.judges import KINDS, make_judge
from ..services.judges.bulk import SCOPES, judge_store, load_pair_file
from ..services.judges.prompt import clean_criteria
from ..services.judges.protocol import JudgeCache, JudgeRun, PairItem, judge_pairs
from ..services.judges.trust import Trust, choose_judge, vet_judge
from .common import workspace


def add_judge_args(parser, *, required: bool = True) -> None:
    group = parser.add_argument_group("judge")
    group.add_argument("--judge", default=None, metavar="KIND",
                       help=f"{' | '.join(KINDS)} (vllm / ollama / llamacpp: an OpenAI-compatible server); default: "
                            "the newest trained reward model, else the server in ALIGNSTUDIO_JUDGE")
    group.add_argument("--judge-model", default=None,
                       help="judge model: reward = reward version or folder (default the newest); implicit = a DPO "
                            "run; local = registry name or folder (default smollm2); remote = model id")
    group.add_argument("--force-judge", action="store_true",
                       help="use a judge even if its measured agreement with people is at chance (its reports "
                            "then carry a warning)")
    group.add_argument("--judge-base-url", default=None, help="server URL for an OpenAI-compatible or proxy API")
    group.add_argument("--api-key-env", default=None, metavar="VAR",
                       help="environment variable holding the key (default OPENAI_API_KEY / ANTHROPIC_API_KEY)")
    group.add_argument("--criteria", default=None, metavar="FILE",
                       help="judge criteria, one per line (default: helpfulness, accuracy, clarity)")
    group.add_argument("--criterion", action="append", default=None, metavar="TEXT",
                       help="a judge criterion (repeat for several; replaces the defaults)")
    group.add_argument("--concurrency", type=int, default=4, help="remote requests in flight at once")
    group.add_argument("--timeout", type=float, default=60.0, help="seconds per remote request")
    group.add_argument("--max-retries", type=int, default=3, help="SDK retries on 429 / 5xx / timeouts")
    group.add_argument("--price-in", type=float, default=None, help="dollars per million input tokens (cost count)")
    group.add_argument("--price-out", type=float, default=None, help="dollars per million output tokens")
    group.add_argument("--no-injection-guard", action="store_true",
                       help="let a response that tries to instruct the judge win (for testing judges)")


def criteria_from(args):
    if args.criteria and args.criterion:
        raise UserError("give --criteria FILE or --criterion TEXT, not both")
    if args.criteria:
        path = Path(args.criteria)
        if not path.is_file():
            raise UserError(f"criteria file {path} does not exist")
        return clean_criteria(path.read_text(encoding="utf-8"))
    if args.criterion:
        return clean_criteria(args.criterion)
    return None


def build_judge(args, pool_factory, store: Store | None = None):
    """The judge the flags describe (none named: the best available, see `trust.choose_judge`);
    `pool_factory()` gives the GeneratorPool (for the local, reward and implicit judges)."""
    kind, model, base_url = (args.judge, args.judge_model, None) if store is None else \
        choose_judge(args.judge, args.judge_model, store)
    generators = pool_factory() if (kind or "").strip().lower() in ("local", "reward", "implicit") else None
    return make_judge(kind, model=model, base_url=args.judge_base_url or base_url, criteria=criteria_from(args),
                      generators=generators, timeout=args.timeout, max_retries=args.max_retries,
                      price_in=args.price_in, price_out=args.price_out, key_env=args.api_key_env)


def vet(args, judge, store: Store, cache) -> Trust:
    """Measure the judge against the human labels and print the figures; refuses a judge at chance unless forced."""
    trust = vet_judge(judge, store, force=getattr(args, "force_judge", False), cache=cache)
    print(trust.line(), flush=True)
    if trust.warning and trust.forced:
        print(trust.warning, file=sys.stderr, flush=True)
    return trust


def register(sub) -> None:
    p = sub.add_parser("judge", help="judge pairs with an AI judge (both orders), into a file or the store",
                       description="Each pair is judged twice, once with the order swapped; the same winner both "
                                   "times is a win, anything else a tie. Malformed replies count as failures.")
    p.add_argument("--pairs", default=None, help="pairs file: prompt + response_a/response_b (or chosen/rejected)")
    p.add_argument("--store", action="store_true", help="judge the store's pairs and record the verdicts as events")
    p.add_argument("--scope", choices=list(SCOPES), default="unlabeled",
                   help="with --store: " + "; ".join(f"{k} = {v}" for k, v in SCOPES.items()))
    p.add_argument("--min-kappa", type=float, default=None,
                   help="with --store: refuse unless the judge's Cohen's kappa against human labels reaches this")
    p.add_argument("--out", default=None, help="verdicts JSONL (required with --pairs)")
    p.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    add_judge_args(p)
    p.set_defaults(func=run)


def _rows(run: JudgeRun, items, judge_name: str) -> list[dict]:
    rows = []
    for item, j in zip(items, run.judgments):
        rows.append({"id": item.key, "prompt": item.messages, "response_a": item.response_a,
                     "response_b": item.response_b, "verdict": j.winner, "consistent": j.consistent,
                     "first": j.first.winner, "second": j.second_winner, "guarded": j.guarded,
                     "rationale": j.rationale, "error": j.error, "judge": judge_name})
    return rows


def _print_summary(run: JudgeRun, source: str) -> None:
    s = run.summary()
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    cost = f", ${s['cost_usd']:.4f}" if s["cost_usd"] is not None else ""
    print(f"{source}: {s['pairs']} pairs, A {s['A']}, B {s['B']}, tie {s['tie']}, no verdict {s['failed']} "
          f"(parse failures {s['parse_failures']}, failed calls {s['backend_failures']}); position inconsistency "
          f"{pct(s['position_inconsistency_rate'])}; {s['usage']['calls']} calls ({s['usage']['cached']} cached), "
          f"{s['usage']['input_tokens']} in / {s['usage']['output_tokens']} out tokens{cost}")


def run(args) -> int:
    if bool(args.pairs) == bool(args.store):
        raise UserError("give --pairs FILE or --store (one of them)")
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
    ws = workspace(args)
    store = Store(ws.db_path)
    judge = build_judge(args, lambda: GeneratorPool(ModelRegistry(ws, store)), store)
    cache = JudgeCache.for_workspace(ws)
    trust = None if args.store else vet(args, judge, store, cache)  # --store: judge_store measures it itself
    bar = tqdm(total=0, desc=f"judging ({judge.name})", unit="call")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        if args.store:
            result = judge_store(store, judge, cache=cache, scope=args.scope, min_kappa=args.min_kappa,
                                 limit=args.limit, concurrency=args.concurrency, progress=progress,
                                 injection_guard=not args.no_injection_guard, force=args.force_judge)
            run_, items, trust = result.run, None, result.trust
            if trust is not None:
                print(trust.line(), flush=True)
        else:
            items = file_pairs.items[: args.limit] if args.limit else file_pairs.items
            run_ = judge_pairs(judge, items, cache=cache, concurrency=args.concurrency, progress=progress,
                               injection_guard=not args.no_injection_guard)
            cache.record(judge.name, run_.judgments, prefix="file:")
    finally:
        bar.close()
    if out is not None:
        if items is None:
            pairs = {p.id: p for p in store.pairs()}
            items = [PairItem(j.key, pairs[j.key].messages, pairs[j.key].text_a, pairs[j.key].text_b)
                     for j in run_.judgments]
        rows = _rows(run_, items, judge.source)
        if trust is not None and trust.warning:
            for row in rows:
                row["judge_warning"] = trust.warning
        write_records(rows, out)
    _print_summary(run_, judge.source)
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
