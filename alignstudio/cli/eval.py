"""`alignstudio eval`: a model (or a trained run) against a baseline on held-out prompts, judged in both orders.

Writes a JSON report (win/tie/loss, win rate with a bootstrap 95% interval, length-controlled win rate, lengths,
pathology counts, perplexity on held-out text, every answer side by side) and prints its summary. Either side
can be served remotely: a remote name (`openai:MODEL`, `anthropic:MODEL`, `ENDPOINT:MODEL` with --endpoints), or
any OpenAI-compatible server by URL (--model-base-url / --baseline-base-url).

With `--capabilities TASKS` it runs lm-evaluation-harness tasks on the model (a finished run, or any model with
--baseline) and its base instead, and prints each score, the delta and its standard error side by side; a run keeps
the result in its folder and cards (`services.evaluation.capabilities`).
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ..core.errors import UserError
from ..services.evaluation import HELDOUT_TEXT, EvalSettings, capabilities, summary_markdown
from .common import add_endpoints_arg, add_setting, configure_endpoints, services
from .judge import add_judge_args, judge_config, print_trust


def register(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model against a baseline with an AI judge (both orders)",
        description="Generate from both models on a prompt set, judge every pair in both orders, "
        "and write a JSON report with win rates, intervals, pathologies and perplexity.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="model name, version, run folder or checkpoint folder, or a "
        "remote model: openai:MODEL, anthropic:MODEL, ENDPOINT:MODEL",
    )
    p.add_argument(
        "--baseline",
        default=None,
        help="baseline model (usually the SFT model, e.g. smollm2); with --capabilities a run's base by default",
    )
    p.add_argument("--prompts", default=None, help="held-out prompts file (JSONL/CSV/Parquet with 'prompt')")
    p.add_argument("--out", default=None, help="report file (.json)")
    for name in ("limit", "max_new_tokens", "temperature", "top_p", "seed", "batch_size"):
        add_setting(p, EvalSettings, name)
    p.add_argument("--heldout", default=str(HELDOUT_TEXT), help="text for the perplexity (alignment tax) check")
    add_setting(p, EvalSettings, "perplexity")
    p.add_argument("--model-base-url", default=None, help="serve --model from this OpenAI-compatible server")
    p.add_argument("--baseline-base-url", default=None, help="serve --baseline from this OpenAI-compatible server")
    add_endpoints_arg(p)
    add_judge_args(p)
    group = p.add_argument_group(f"capability checks (lm-evaluation-harness; {capabilities.LM_EVAL_INSTALL})")
    add_setting(group, capabilities.CapabilitySettings, "tasks", "--capabilities", default=None, metavar="TASKS")
    add_setting(
        group, capabilities.CapabilitySettings, "limit", "--capability-limit", dest="capability_limit", metavar="N"
    )
    add_setting(
        group,
        capabilities.CapabilitySettings,
        "batch_size",
        "--capability-batch-size",
        dest="capability_batch",
        metavar="N",
    )
    p.set_defaults(func=run)


def run_capabilities(args) -> int:
    """--capabilities: lm-eval tasks on the model and its base, side by side; kept with a run, and in --out."""
    settings = capabilities.CapabilitySettings(
        tasks=args.tasks, limit=args.capability_limit, batch_size=args.capability_batch
    )
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() != ".json":
        raise UserError(f"--out must be a .json file, got {out.name}")
    bar = tqdm(total=100, desc="capabilities", unit="%")

    def progress(fraction: float, desc: str) -> None:
        bar.set_description(desc[:60], refresh=False)
        bar.n = round(100 * fraction)
        bar.refresh()

    try:
        report, plan = capabilities.check(services(args), args.model, settings, args.baseline, progress)
    finally:
        bar.close()
    if out is not None:
        capabilities.save(report, out)
    print(capabilities.markdown(report).replace("**", ""))
    for where in [plan.run_dir / capabilities.RESULT_FILE if plan.run_dir else None, out]:
        if where is not None:
            print(f"wrote the result to {where}")
    return 0


def run(args) -> int:
    from ..services.sampling.prompt_sets import load_prompts

    if args.tasks is not None:
        return run_capabilities(args)
    missing = [flag for flag in ("baseline", "prompts", "out") if not getattr(args, flag)]
    if missing:
        raise UserError(
            "eval needs " + ", ".join(f"--{flag}" for flag in missing) + " (or --capabilities TASKS for lm-eval tasks)"
        )
    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise UserError(f"--out must be a .json file, got {out.name}")
    config = judge_config(args)
    settings = EvalSettings(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=args.batch_size,
        limit=args.limit,
        concurrency=config.concurrency,
        perplexity=args.perplexity,
        injection_guard=config.injection_guard,
    )
    prompts = load_prompts(args.prompts)
    heldout = None
    if settings.perplexity:
        heldout_path = Path(args.heldout)
        if not heldout_path.is_file():
            raise UserError(f"held-out text {heldout_path} does not exist (or pass --no-perplexity)")
        heldout = heldout_path.read_text(encoding="utf-8")
    opened = services(args)
    configure_endpoints(args)
    judge = opened.evaluation.judge(config)  # before the models load: no judge, no evaluation
    bar = tqdm(total=100, desc="evaluating", unit="%")

    def progress(fraction: float, desc: str) -> None:
        bar.set_description(desc[:60], refresh=False)
        bar.n = round(100 * fraction)
        bar.refresh()

    try:  # the Evaluate tab's door: the judge vetted (never the model's own, measured against people) there
        report, _ = opened.evaluation.evaluate_prompts(
            args.model,
            args.baseline,
            prompts,
            settings,
            config,
            prompts_source=str(args.prompts),
            out=out,
            heldout_text=heldout,
            model_base_url=args.model_base_url,
            baseline_base_url=args.baseline_base_url,
            built_judge=judge,
            on_trust=print_trust,
            progress=progress,
        )
    finally:
        bar.close()
    print(summary_markdown(report).replace("**", ""))
    print(f"wrote the report to {out}")
    return 0
