"""`alignstudio rounds`: iterative alignment, N rounds of sample -> judge -> filter -> train -> evaluate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..core.formats import load_prompts
from ..core.store import Store
from ..services.sampling.prompt_sets import SHIPPED
from ..services.rounds import RoundsSettings, run_rounds
from ..training.spec import RunSpec, settings
from .common import add_setting, workspace

ROUNDS_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RoundsSettings)}


def register(sub) -> None:
    p = sub.add_parser("rounds", help="iterative alignment rounds from the current policy",
                       description="Each round samples pairs from the current policy, labels them with an AI judge "
                                   "(both orders), drops ties and invalid pairs, trains DPO from the current policy "
                                   "and evaluates the result against the SFT model. Writes OUT/rounds.json and "
                                   "OUT/round-N/{pairs.jsonl,eval.json,round.json}.")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--model", default="smollm2", help="the SFT model (round 1's policy and the baseline)")
    p.add_argument("--prompts", default=str(SHIPPED["default"]), help="prompts to sample pairs for")
    p.add_argument("--eval-prompts", default=str(SHIPPED["eval"]), help="held-out prompts for evaluation")
    p.add_argument("--judge", default="", help="reward | implicit | rules | local | openai | anthropic | vllm | ollama; "
                                               "default: the newest trained reward model (offline), else the "
                                               "server in ALIGNSTUDIO_JUDGE")
    p.add_argument("--judge-model", default=None, help="reward: a reward version or folder (default the newest)")
    p.add_argument("--force-judge", action="store_true",
                   help="use the judge even if it is at chance against the human labels (reports say so)")
    p.add_argument("--retrain-judge", action="store_true",
                   help="retrain the reward judge after each round on the human labels plus the judged pairs (off "
                        "by default: a judge trained on its own verdicts confirms its own mistakes)")
    p.add_argument("--judge-steps", type=int, default=40, help="training steps of each retrained reward judge")
    p.add_argument("--pairs-per-round", type=int, default=16)
    # each round's training run: the flags, defaults and help of `train` (shorter pairs, so a shorter max length)
    add_setting(p, RunSpec, "max_steps", help="training steps per round (default: chosen from the round's pairs, like "
                                       "`train`)")
    add_setting(p, RunSpec, "beta")
    add_setting(p, RunSpec, "learning_rate", "--lr", help="learning rate (default: chosen, like `train`)")
    add_setting(p, RunSpec, "max_length", default=ROUNDS_DEFAULTS["max_length"])
    add_setting(p, RunSpec, "batch_size", help="batch size (default: chosen, like `train`)")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--eval-limit", type=int, default=16, help="held-out prompts per evaluation")
    p.add_argument("--seed", type=int, default=0)
    add_setting(p, RunSpec, "report_to", nargs="+", choices=["none", *settings()["report_to"].choices], metavar="TRACKER",
                  help="experiment trackers for each round's training run: tensorboard, wandb, mlflow, trackio")
    p.add_argument("--out", required=True, help="rounds folder to write")
    p.set_defaults(func=run)


def run(args) -> int:
    settings = RoundsSettings(rounds=args.rounds, pairs_per_round=args.pairs_per_round, judge=args.judge,
                              judge_model=args.judge_model, force_judge=args.force_judge,
                              retrain_judge=args.retrain_judge, judge_steps=args.judge_steps, beta=args.beta, max_steps=args.max_steps,
                              learning_rate=args.learning_rate, max_length=args.max_length, batch_size=args.batch_size,
                              max_new_tokens=args.max_new_tokens, eval_limit=args.eval_limit, seed=args.seed,
                              report_to=args.report_to)
    prompts, eval_prompts = load_prompts(args.prompts), load_prompts(args.eval_prompts)
    ws = workspace(args)
    rows = run_rounds(ws, Store(ws.db_path), args.model, prompts, eval_prompts, settings,
                      Path(args.out).expanduser().resolve(), say=lambda line: print(line, flush=True))
    print("round  kept  win rate vs SFT  95% CI")
    for row in rows:
        low, high = row["win_rate_ci"]
        print(f"{row['round']:>5}  {row['kept']:>4}  {row['win_rate']:>15}  [{low}, {high}]")
    return 0
