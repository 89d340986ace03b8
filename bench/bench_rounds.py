"""Do offline rounds with the reward judge beat one round? (issue 13's last target)

    python -m bench.bench_rounds --rule concise [--rounds 2] [--pairs-per-round 32] [--judge-model NAME]

1. The judge is the reward model the effect benchmark trained on the rule's labeled pairs
   (`python -m bench effect --judges` registers it as `rm-RULE...`), or the one named with --judge-model.
2. `alignstudio rounds --rounds N --judge reward --judge-model RM` runs in a subprocess as a user runs it:
   each round samples pairs from the current policy, the reward judge labels them (no network), DPO trains
   from the current policy with the default schedule, and the adapter is merged to be the next policy.
3. Each round's policy answers the held-out prompts (data/eval_prompts.jsonl, never trained on; same seed as
   the effect benchmark's base answers, which are reused from its cache). The rule scores every round against
   the base: the win rate with a 95% bootstrap interval, and round N against round 1 directly.

Writes bench/results/rounds-RULE.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_effect import RULES, answer, cached, load_prompts, score  # noqa: E402
from bench.common import ROOT, bench_workspace, describe, machine, table, write_result  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", default="concise", choices=sorted(RULES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pairs-per-round", type=int, default=32)
    parser.add_argument("--eval-prompts", type=int, default=71)
    parser.add_argument("--judge-model", default=None, help="reward version or folder (default: rm-RULE-judges)")
    parser.add_argument("--workspace", default=None)
    args = parser.parse_args(argv)

    from alignstudio.core.registry import ModelRegistry
    from alignstudio.core.store import Store
    from alignstudio.services.sampling.generators import GeneratorPool

    info = machine()
    print(f"rounds benchmark — {describe(info)}", flush=True)
    ws = bench_workspace(args.workspace)
    work = ws.root / "effect"
    rule = RULES[args.rule]
    judge_model = args.judge_model or str(work / f"rm-{args.rule}-judges")
    out = work / f"rounds-{args.rule}-{int(time.time())}"
    cmd = [
        sys.executable,
        "-m",
        "alignstudio",
        "--workspace",
        str(ws.root),
        "rounds",
        "--rounds",
        str(args.rounds),
        "--model",
        "smollm2",
        "--judge",
        "reward",
        "--judge-model",
        judge_model,
        "--pairs-per-round",
        str(args.pairs_per_round),
        "--out",
        str(out),
    ]
    print(" ".join(cmd[2:]), flush=True)
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, text=True)
    rounds_s = round(time.perf_counter() - started, 1)
    if result.returncode != 0:
        raise SystemExit(f"rounds failed (exit {result.returncode})")
    rows = json.loads((out / "rounds.json").read_text())["rounds"]

    pool = GeneratorPool(ModelRegistry(ws, Store(ws.db_path)))
    eval_prompts = load_prompts(ROOT / "data" / "eval_prompts.jsonl", args.eval_prompts)
    base_answers = cached(
        work / f"base-{len(eval_prompts)}.json", lambda: answer(pool.get("smollm2"), eval_prompts, seed=101)
    )
    answers, results = {}, []
    for row in rows:
        policy = row["policy_after"]
        answers[row["round"]] = answer(pool.get(policy), eval_prompts, seed=101)
        pool.release(policy)
        effect = score(rule, answers[row["round"]], base_answers)
        versus_first = score(rule, answers[row["round"]], answers[1]) if row["round"] > 1 else None
        results.append(
            {
                "round": row["round"],
                "policy": policy,
                "kept_pairs": row["kept"],
                "judge_win_rate": row["win_rate"],
                "rule_vs_base": effect,
                "rule_vs_round_1": versus_first,
            }
        )
        print(
            f"round {row['round']}: {row['kept']} judged pairs kept; under the rule vs base "
            f"{effect['win_rate']:.2f} [{effect['ci'][0]:.2f}, {effect['ci'][1]:.2f}], mean words "
            f"{effect['mean_words']}"
            + (
                f"; vs round 1 {versus_first['win_rate']:.2f} "
                f"[{versus_first['ci'][0]:.2f}, {versus_first['ci'][1]:.2f}]"
                if versus_first
                else ""
            ),
            flush=True,
        )
    print(
        "\n"
        + table(
            [
                [
                    r["round"],
                    r["kept_pairs"],
                    f"{r['rule_vs_base']['win_rate']:.2f} "
                    f"[{r['rule_vs_base']['ci'][0]:.2f}, {r['rule_vs_base']['ci'][1]:.2f}]",
                    f"{r['rule_vs_round_1']['win_rate']:.2f}" if r["rule_vs_round_1"] else "-",
                    r["rule_vs_base"]["mean_words"],
                ]
                for r in results
            ],
            ["round", "judged pairs kept", "win rate vs base under the rule [95% CI]", "vs round 1", "mean words"],
        )
    )
    write_result(
        f"rounds-{args.rule}",
        {
            "machine": info,
            "rule": rule.describes,
            "judge_model": judge_model,
            "pairs_per_round": args.pairs_per_round,
            "rounds_s": rounds_s,
            "results": results,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
