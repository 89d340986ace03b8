"""`alignstudio rounds`: iterative alignment, N rounds of sample -> judge -> filter -> train -> evaluate."""

from __future__ import annotations

from pathlib import Path

from ..services import from_values
from ..services.rounds.settings import RoundsSettings, flag_of, settings_of
from ..services.sampling.prompt_sets import SHIPPED
from ..services.training import RunSpec, form_settings
from .common import add_setting, services


def register(sub) -> None:
    p = sub.add_parser(
        "rounds",
        help="iterative alignment rounds from the current policy",
        description="Each round samples pairs from the current policy, labels them with an AI judge "
        "(both orders), drops ties and invalid pairs, trains DPO from the current policy "
        "and evaluates the result against the SFT model. Writes OUT/rounds.json and "
        "OUT/round-N/{pairs.jsonl,eval.json,round.json}.",
    )
    p.add_argument(
        "--model", default=RunSpec.default("model"), help="the SFT model (round 1's policy and the baseline)"
    )
    p.add_argument("--prompts", default=str(SHIPPED["default"]), help="prompts to sample pairs for")
    p.add_argument("--eval-prompts", default=str(SHIPPED["eval"]), help="held-out prompts for evaluation")
    for name in settings_of(RoundsSettings):
        extra = (
            {"nargs": "+", "choices": ["none", *form_settings()["report_to"].choices], "metavar": "TRACKER"}
            if name == "report_to"
            else {}
        )
        add_setting(p, RoundsSettings, name, flag_of(name), **extra)
    p.add_argument("--out", required=True, help="rounds folder to write")
    p.set_defaults(func=run)


def settings_from(args) -> RoundsSettings:
    return from_values(RoundsSettings, {name: getattr(args, name) for name in settings_of(RoundsSettings)})


def run(args) -> int:
    from ..services.rounds.loop import run_rounds
    from ..services.sampling.prompt_sets import load_prompts

    settings = settings_from(args)
    prompts, eval_prompts = load_prompts(args.prompts), load_prompts(args.eval_prompts)
    opened = services(args)
    rows = run_rounds(
        opened.workspace,
        opened.store,
        args.model,
        prompts,
        eval_prompts,
        settings,
        Path(args.out).expanduser().resolve(),
        say=lambda line: print(line, flush=True),
    )
    print("round  kept  win rate vs SFT  95% CI")
    for row in rows:
        low, high = row["win_rate_ci"]
        print(f"{row['round']:>5}  {row['kept']:>4}  {row['win_rate']:>15}  [{low}, {high}]")
    return 0
