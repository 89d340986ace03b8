"""The effect benchmark: does a default training run make the embedded model prefer what its labels preferred?

    python -m bench effect                     # three rules, <= 50 labeled pairs each (~35 min on 2 cores)
    python bench/bench_effect.py --rules concise --pairs 30

The whole loop with no setting touched, as a user runs it:
1. sample two responses (temperatures 0.7 and 1.0) from SmolLM2 for the training prompts (data/prompts.jsonl);
2. label them with a synthetic preference rule written here (each rule stands in for a person with one
   consistent taste: a length target, a format, a style); pairs the rule cannot tell apart are skipped, as a
   person would skip them, and at most --pairs labeled pairs are used;
3. `alignstudio train --method dpo --data labeled.jsonl` with nothing else (its own held-out split, schedule,
   early stopping), in a subprocess like a user's;
4. answer the held-out prompts (data/eval_prompts.jsonl, never trained on) with the trained model and the
   base model, same seeds; score each pair under the rule: the win rate of trained over base with a 95%
   bootstrap interval. The control is the base against itself with other seeds (0.5 expected);
5. the alignment tax: perplexity on data/heldout_text.txt, trained vs base.

Sampled pairs and base answers are cached in the workspace (same seeds give the same text), so a second run
pays only for training and the trained model's answers. Writes bench/results/effect.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, bench_workspace, describe, load, machine, table, write_result  # noqa: E402

MAX_NEW_TOKENS = 128
TEMPERATURES = (0.7, 1.0)  # the Label tab's defaults
TOP_P = 0.95
SAMPLE_BATCH = 8  # prompts per decode call (16 rows)
EVAL_TEMPERATURE = 0.7


# -- the rules: each scores one response; higher is preferred; `decisive` says a pair is clear enough ----------


_LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S", re.M)
_CONTRACTION = re.compile(r"\b\w+(?:n't|'re|'ll|'ve|'m|'d|'s)\b", re.I)


def _words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class Rule:
    name: str
    describes: str
    score: Callable[[str], float]
    min_gap: Callable[[float, float], bool]  # (score_a, score_b) -> the pair is decisive

    def prefer(self, a: str, b: str) -> str:
        """'a', 'b' or 'tie' under this rule."""
        sa, sb = self.score(a), self.score(b)
        if sa == sb or not self.min_gap(sa, sb):
            return "tie"
        return "a" if sa > sb else "b"


RULES = {
    "concise": Rule(
        "concise",
        "a length target: the shorter answer wins when it is at least 20% shorter",
        lambda t: -_words(t),
        lambda a, b: min(-a, -b) <= 0.8 * max(-a, -b),
    ),
    "lists": Rule(
        "lists",
        "a format: the answer with more list items (bulleted or numbered lines) wins",
        lambda t: len(_LIST_LINE.findall(t)),
        lambda a, b: abs(a - b) >= 1,
    ),
    "formal": Rule(
        "formal",
        "a style: fewer contractions and exclamation marks per 100 words wins (formal register)",
        lambda t: -100.0 * (len(_CONTRACTION.findall(t)) + t.count("!")) / max(1, _words(t)),
        lambda a, b: abs(a - b) >= 0.5,
    ),
}


# -- stages ------------------------------------------------------------------------------------------------------


def load_prompts(path: Path, limit: int | None = None):
    from alignstudio.core.formats import load_prompts as read

    items = read(str(path))
    return items[:limit] if limit else items


def sample_pairs(gen, prompts, seed: int) -> list[dict]:
    """Two responses per prompt, several prompts per decode call (rows grouped by prompt length)."""
    order = sorted(range(len(prompts)), key=lambda i: len(str(prompts[i].messages)))
    pairs: dict[int, dict] = {}
    for start in range(0, len(order), SAMPLE_BATCH):
        chunk = order[start : start + SAMPLE_BATCH]
        conversations = [prompts[i].messages for i in chunk for _ in TEMPERATURES]
        temps = [t for _ in chunk for t in TEMPERATURES]
        texts = gen.complete(conversations, temps, top_p=TOP_P, max_new_tokens=MAX_NEW_TOKENS, seed=seed + start)
        for j, i in enumerate(chunk):
            pairs[i] = {"prompt": prompts[i].messages, "a": texts[2 * j], "b": texts[2 * j + 1]}
        print(f"  sampled {min(start + SAMPLE_BATCH, len(order))}/{len(order)} prompts", flush=True)
    return [pairs[i] for i in range(len(prompts))]


def label(pairs: list[dict], rule: Rule, limit: int) -> list[dict]:
    rows = []
    for pair in pairs:
        if not pair["a"].strip() or not pair["b"].strip() or pair["a"] == pair["b"]:
            continue
        winner = rule.prefer(pair["a"], pair["b"])
        if winner == "tie":
            continue
        chosen, rejected = (pair["a"], pair["b"]) if winner == "a" else (pair["b"], pair["a"])
        rows.append(
            {
                "prompt": pair["prompt"],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
        if len(rows) >= limit:
            break
    return rows


def answer(gen, prompts, seed: int) -> list[str]:
    from alignstudio.services.evaluation import EvalSettings, generate_answers

    settings = EvalSettings(
        max_new_tokens=MAX_NEW_TOKENS,
        temperature=EVAL_TEMPERATURE,
        top_p=TOP_P,
        seed=seed,
        batch_size=8,
        perplexity=False,
    )
    return generate_answers(gen, prompts, settings)


def score(rule: Rule, model_answers: list[str], base_answers: list[str]) -> dict:
    from alignstudio.services.evaluation.stats import bootstrap_ci, scores_of, win_rate

    outcomes = [{"a": "win", "b": "loss", "tie": "tie"}[rule.prefer(m, b)] for m, b in zip(model_answers, base_answers)]
    scores = scores_of(outcomes)
    low, high = bootstrap_ci(scores, seed=0)
    return {
        "win_rate": round(win_rate(scores), 4),
        "ci": [round(low, 4), round(high, 4)],
        "wins": outcomes.count("win"),
        "ties": outcomes.count("tie"),
        "losses": outcomes.count("loss"),
        "mean_words": round(sum(map(_words, model_answers)) / len(model_answers), 1),
        "mean_rule_score": round(sum(map(rule.score, model_answers)) / len(model_answers), 3),
    }


def perplexity_of(gen) -> float:
    from alignstudio.training.drift import text_perplexity as perplexity

    text = (ROOT / "data" / "heldout_text.txt").read_text(encoding="utf-8")
    with gen.lock:
        return perplexity(gen.model, gen.tokenizer, text, max_tokens=8192)[0]


def cached(path: Path, make: Callable[[], object]):
    if path.is_file():
        return json.loads(path.read_text())
    value = make()
    path.write_text(json.dumps(value))
    return value


def train(ws_root: Path, data: Path, out: Path, extra: list[str]) -> dict:
    """`alignstudio train --method dpo --data FILE` as a user runs it; returns the run card."""
    cmd = [
        sys.executable,
        "-m",
        "alignstudio",
        "--workspace",
        str(ws_root),
        "train",
        "--method",
        "dpo",
        "--data",
        str(data),
        "--model",
        "smollm2",
        "--out",
        str(out),
        *extra,
    ]
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    last = [ln for ln in result.stdout.strip().splitlines() if ln.strip()][-1:] or ["(no output)"]
    print(f"  {' '.join(cmd[3:])}\n  -> exit {result.returncode} in {seconds:.0f} s; last line: {last[0]}", flush=True)
    if result.returncode != 0:
        print(result.stderr[-3000:], flush=True)
        raise SystemExit(f"training failed for {data}")
    card = json.loads((out / "card.json").read_text())
    card["_seconds"] = seconds
    card["_last_line"] = last[0]
    return card


def labeled_heldout(pairs: list[dict], rule: Rule, used: list[dict], limit: int) -> list[dict]:
    """Decisive pairs under the rule on prompts the training rows do not have (the judge's held-out check):
    the held-out evaluation prompts' two base answers first, then unused training prompts."""
    from alignstudio.training.split import prompt_key

    seen = {prompt_key(r["prompt"]) for r in used}
    rest = [p for p in pairs if prompt_key(p["prompt"]) not in seen]
    return label(rest, rule, limit)


def judge_agreement(
    ws_root: Path,
    pool,
    rule: Rule,
    data: Path,
    heldout: list[dict],
    out: Path,
    extra: list[str] = (),
    policy_run: Path | None = None,
    reuse: bool = False,
) -> dict:
    """Train a reward model on the rule's labeled pairs (`train --method reward`, nothing else set) and
    measure its agreement with the rule on held-out pairs; the local prompted judge on the same pairs, and the
    implicit judge of the rule's DPO run when one exists (`policy_run`, trained on the same labels)."""
    from alignstudio.services.judges import make_judge
    from alignstudio.services.judges.protocol import PairItem, judge_pairs

    cmd = [
        sys.executable,
        "-m",
        "alignstudio",
        "--workspace",
        str(ws_root),
        "train",
        "--method",
        "reward",
        "--data",
        str(data),
        "--model",
        "smollm2",
        "--out",
        str(out),
        *extra,
    ]
    if reuse and (out / "card.json").is_file():  # measured before: its card has the training time
        train_s = json.loads((out / "card.json").read_text())["duration_s"]
    else:
        shutil.rmtree(out, ignore_errors=True)
        started = time.perf_counter()
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        train_s = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stderr[-3000:], flush=True)
            raise SystemExit(f"reward training failed for {data}")
    items = [
        PairItem(str(i), r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"])
        for i, r in enumerate(heldout)
    ]
    figures = {"train_s": round(train_s, 1), "heldout_pairs": len(items)}
    kinds = {"reward": str(out / "model"), "local": "smollm2"}
    if policy_run is not None and (policy_run / "model").is_dir():
        kinds["implicit"] = str(policy_run)
    for kind, model in kinds.items():
        judge = make_judge(kind, model, generators=pool)
        started = time.perf_counter()
        run = judge_pairs(judge, items)
        wins = [j.winner for j in run.judgments]
        figures[kind] = {
            "agreement": round(sum(w == "A" for w in wins) / len(items), 4),
            "agreement_ties_half": round(
                sum(1.0 if w == "A" else 0.5 if w == "tie" else 0.0 for w in wins) / len(items), 4
            ),
            "ties": wins.count("tie"),
            "position_bias": run.summary().first_position_rate,
            "seconds": round(time.perf_counter() - started, 1),
        }
    return figures


def judging_time(judge_folder: Path, pool, pairs: list[dict], count: int = 1000) -> dict:
    """Seconds for a fresh reward judge to judge `count` distinct pairs in both orders (no cached scores):
    prompts and responses recombined from the sampled pairs, so every (prompt, response) is scored anew."""
    from alignstudio.services.judges import make_judge
    from alignstudio.services.judges.protocol import PairItem, judge_pairs

    responses = [p[k] for p in pairs for k in ("a", "b")]
    prompts = [p["prompt"] for p in pairs]
    shift = lambda i: i // len(prompts) + 3 * i  # noqa: E731 - a new response for each pass over the prompts
    items = [
        PairItem(
            str(i),
            prompts[i % len(prompts)],
            responses[shift(i) % len(responses)],
            responses[(shift(i) + 1) % len(responses)],
        )
        for i in range(count)
    ]
    judge = make_judge("reward", str(judge_folder / "model"), generators=pool)
    started = time.perf_counter()
    run = judge_pairs(judge, items)
    seconds = time.perf_counter() - started
    return {
        "pairs": count,
        "seconds": round(seconds, 1),
        "responses_scored": len(judge._scores),
        "verdicts": len([j for j in run.judgments if j.winner]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=sorted(RULES))
    parser.add_argument("--pairs", type=int, default=50, help="labeled pairs per rule, at most")
    parser.add_argument("--train-prompts", type=int, default=161, help="prompts sampled for labeling")
    parser.add_argument("--eval-prompts", type=int, default=71, help="held-out prompts answered")
    parser.add_argument("--train-args", default="", help="extra `alignstudio train` flags (default: none)")
    parser.add_argument("--tag", default="", help="suffix for the run folders and the result file")
    parser.add_argument("--quick", action="store_true", help="one rule, 24 pairs, 24 held-out prompts")
    parser.add_argument(
        "--judges",
        action="store_true",
        help="also train a reward judge per rule on the same pairs and measure its agreement with the "
        "rule on up to 50 held-out pairs (and the local prompted judge's)",
    )
    parser.add_argument(
        "--judge-train-args", default="", help="extra `alignstudio train --method reward` flags (default: none)"
    )
    parser.add_argument(
        "--reuse-judges",
        action="store_true",
        help="measure the reward judges an earlier run with the same --tag trained (no retraining)",
    )
    parser.add_argument("--skip-timing", action="store_true", help="do not time judging 1,000 pairs")
    parser.add_argument("--no-policy", action="store_true", help="skip DPO training and the win rates")
    parser.add_argument(
        "--reuse-runs",
        action="store_true",
        help="measure the DPO runs an earlier run with the same --tag trained (no retraining)",
    )
    parser.add_argument("--workspace", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.rules, args.pairs, args.eval_prompts = args.rules[:1], 24, 24

    from alignstudio.core.registry import ModelRegistry
    from alignstudio.core.store import Store
    from alignstudio.services.sampling.generators import GeneratorPool

    info = machine()
    print(f"effect benchmark — {describe(info)}", flush=True)
    ws = bench_workspace(args.workspace)
    work = ws.root / "effect"
    work.mkdir(parents=True, exist_ok=True)
    pool = GeneratorPool(ModelRegistry(ws, Store(ws.db_path)))
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    base = pool.get("smollm2")
    train_prompts = load_prompts(ROOT / "data" / "prompts.jsonl", args.train_prompts)
    eval_prompts = load_prompts(ROOT / "data" / "eval_prompts.jsonl", args.eval_prompts)
    pairs = cached(work / f"pairs-{len(train_prompts)}.json", lambda: sample_pairs(base, train_prompts, seed=11))
    timings["sample"] = round(time.perf_counter() - t0, 1)
    print(f"sampled {len(pairs)} pairs in {timings['sample']} s (cached after the first run)", flush=True)

    t0 = time.perf_counter()
    base_answers = cached(work / f"base-{len(eval_prompts)}.json", lambda: answer(base, eval_prompts, seed=101))
    control_answers = cached(work / f"control-{len(eval_prompts)}.json", lambda: answer(base, eval_prompts, seed=202))
    base_ppl = cached(work / "base-ppl.json", lambda: perplexity_of(base))
    timings["base answers"] = round(time.perf_counter() - t0, 1)

    results = {}
    for name in args.rules:
        rule = RULES[name]
        print(f"\n== rule {name}: {rule.describes}", flush=True)
        rows = label(pairs, rule, args.pairs)
        data = work / f"labeled-{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"  {len(rows)} labeled pairs (of {len(pairs)} sampled; the rest were ties under the rule)", flush=True)
        if args.judges:
            eval_pairs = [
                {"prompt": p.messages, "a": a, "b": b} for p, a, b in zip(eval_prompts, base_answers, control_answers)
            ]
            heldout = labeled_heldout(eval_pairs + pairs, rule, rows, 50)
            rm_out = work / f"rm-{name}{args.tag}"
            judged = judge_agreement(
                ws.root,
                pool,
                rule,
                data,
                heldout,
                rm_out,
                args.judge_train_args.split(),
                policy_run=work / f"run-{name}",
                reuse=args.reuse_judges,
            )
            print(
                f"  reward judge: agreement {judged['reward']['agreement']:.2f} on {judged['heldout_pairs']} "
                f"held-out pairs (ties {judged['reward']['ties']}), trained in {judged['train_s']:.0f} s; "
                f"local judge: {judged['local']['agreement']:.2f} (ties {judged['local']['ties']}, position "
                f"bias {judged['local']['position_bias']})"
                + (
                    f"; implicit judge of run-{name}: {judged['implicit']['agreement']:.2f} (ties "
                    f"{judged['implicit']['ties']})"
                    if "implicit" in judged
                    else ""
                ),
                flush=True,
            )
            results.setdefault(name, {})["judges"] = judged
            if "judging_1000" not in timings and not args.skip_timing:
                timing = judging_time(rm_out, pool, pairs)
                timings["judging_1000"] = timing["seconds"]
                print(
                    f"  judging {timing['pairs']} pairs (both orders, {timing['responses_scored']} responses "
                    f"scored) with a fresh reward judge: {timing['seconds']:.1f} s",
                    flush=True,
                )
        if args.no_policy:
            continue
        out = work / f"run-{name}{args.tag}"
        if args.reuse_runs and (out / "card.json").is_file():  # trained before: measure its model again
            card = json.loads((out / "card.json").read_text())
            train_s = card["duration_s"]
        else:
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            card = train(ws.root, data, out, args.train_args.split())
            train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        trained = pool.get(str(out))
        answers = answer(trained, eval_prompts, seed=101)
        answer_s = time.perf_counter() - t0
        ppl = perplexity_of(trained)
        pool.release(str(out))  # one trained model in memory at a time
        del trained
        effect = score(rule, answers, base_answers)
        control = score(rule, control_answers, base_answers)
        verdict = card.get("verdict") or {}
        results[name] = results.get(name, {}) | {
            "rule": rule.describes,
            "pairs": len(rows),
            "heldout": card["dataset"].get("heldout"),
            "schedule": card.get("schedule"),
            "steps": card["final_metrics"].get("step"),
            "verdict": verdict.get("headline"),
            "heldout_accuracy": verdict.get("heldout_accuracy"),
            "best_step": verdict.get("best_step"),
            "effect": effect,
            "control": control,
            "perplexity": round(ppl, 3),
            "base_perplexity": round(base_ppl, 3),
            "perplexity_change": round(ppl / base_ppl - 1, 4),
            "seconds": {"train": round(train_s, 1), "answer": round(answer_s, 1)},
            "base_mean_words": round(sum(map(_words, base_answers)) / len(base_answers), 1),
        }
        r = results[name]
        print(
            f"  verdict: {r['verdict']}\n  win rate vs base {effect['win_rate']:.2f} "
            f"[{effect['ci'][0]:.2f}, {effect['ci'][1]:.2f}] (W/T/L {effect['wins']}/{effect['ties']}/"
            f"{effect['losses']}); base vs itself {control['win_rate']:.2f}; perplexity {base_ppl:.2f} -> "
            f"{ppl:.2f} ({100 * r['perplexity_change']:+.1f}%)",
            flush=True,
        )

    rows = []
    for name, r in results.items():
        if "effect" not in r:
            continue
        e, h = r["effect"], r["heldout"] or {}
        acc = r["heldout_accuracy"]
        rows.append(
            [
                name,
                f"{r['pairs']} ({h.get('train_rows', '?')} train / {h.get('heldout_rows', 0)} held out)",
                f"{acc:.2f}" if acc is not None else "-",
                f"**{e['win_rate']:.2f}** [{e['ci'][0]:.2f}, {e['ci'][1]:.2f}]",
                f"{r['control']['win_rate']:.2f}",
                f"{100 * r['perplexity_change']:+.1f}%",
                f"{timings['sample'] / max(1, len(results)) + r['seconds']['train'] + r['seconds']['answer']:.0f} s",
            ]
        )
    print(
        "\n"
        + table(
            rows,
            [
                "rule",
                "labeled pairs",
                "held-out pref. acc.",
                "win rate vs base [95% CI]",
                "base vs base",
                "perplexity change",
                "loop time",
            ],
        )
    )
    judged = [
        [
            name,
            f"{r['judges']['heldout_pairs']}",
            f"{r['judges']['reward']['agreement']:.2f}",
            f"{r['judges']['implicit']['agreement']:.2f}" if "implicit" in r["judges"] else "-",
            f"{r['judges']['local']['agreement']:.2f} (position bias {r['judges']['local']['position_bias']})",
            f"{r['judges']['train_s']:.0f} s",
        ]
        for name, r in results.items()
        if "judges" in r
    ]
    if judged:
        print(
            "\n"
            + table(
                judged,
                [
                    "rule",
                    "held-out pairs",
                    "reward judge agreement",
                    "implicit judge agreement",
                    "local judge agreement",
                    "reward training",
                ],
            )
        )
    print(f"\n{describe(info)}; load avg {load()}; stages {timings}; eval prompts {len(eval_prompts)}")
    write_result(
        f"effect{args.tag}",
        {
            "machine": info,
            "timings": timings,
            "eval_prompts": len(eval_prompts),
            "max_new_tokens": MAX_NEW_TOKENS,
            "results": results,
            "train_args": args.train_args,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
