"""Reward-judge figures for the README (issue 13): agreement of a reward model trained on N pairs labeled by one
consistent synthetic preference (the bulleted list beats the same sentences as a paragraph) on held-out pairs
with new prompts, the training time on 200 pairs, and the time to judge 1,000 pairs (both orders).

    python -m bench.bench_reward_judge --workspace WS [--model smollm2] [--train 50] [--heldout 50]

Pairs are built from the shipped prompts and held-out text (no sampling, to save CPU). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic_pairs(count: int, offset: int = 0) -> list[dict]:
    prompts = [
        json.loads(line)["prompt"]
        for line in (ROOT / "data" / "prompts.jsonl").read_text().splitlines()
        if line.strip()
    ]
    prompts += [
        json.loads(line)["prompt"]
        for line in (ROOT / "data" / "eval_prompts.jsonl").read_text().splitlines()
        if line.strip()
    ]
    text = (ROOT / "data" / "heldout_text.txt").read_text()
    sentences = [s.strip() + "." for s in text.replace("\n", " ").split(".") if len(s.strip()) > 20]
    rows = []
    for i in range(offset, offset + count):
        prompt = prompts[i % len(prompts)]
        prompt = prompt if isinstance(prompt, str) else prompt[-1]["content"]
        picked = [sentences[(3 * i + k) % len(sentences)] for k in range(3)]
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"{prompt} (#{i})"}],
                "chosen": [{"role": "assistant", "content": "\n".join(f"- {s}" for s in picked)}],
                "rejected": [{"role": "assistant", "content": " ".join(picked)}],
            }
        )
    return rows


def main() -> None:
    from alignstudio.cli import main as cli
    from alignstudio.core.formats import write_records
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.core.store import Store
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.judges import make_judge
    from alignstudio.services.judges.protocol import PairItem, judge_pairs
    from alignstudio.services.sampling.generators import GeneratorPool

    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--train", type=int, default=50)
    parser.add_argument("--heldout", type=int, default=50)
    parser.add_argument("--judge-pairs", type=int, default=1000)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    ws = Workspace.open(args.workspace)
    folder = ws.root / "bench-reward"
    folder.mkdir(parents=True, exist_ok=True)
    data = write_records(synthetic_pairs(args.train), folder / f"train-{args.train}.jsonl")
    out = folder / f"rm-{args.train}-{int(time.time())}"
    flags = ["--max-steps", str(args.max_steps)] if args.max_steps else ["--epochs", str(args.epochs)]
    started = time.time()
    code = cli(
        [
            "--workspace",
            str(ws.root),
            "train",
            "--method",
            "reward",
            "--data",
            str(data),
            "--model",
            args.model,
            "--out",
            str(out),
            "--max-length",
            "256",
            "--batch-size",
            "4",
            "--lr",
            "1e-4",
            "--save-steps",
            "1000",
            *flags,
        ]
    )
    train_s = time.time() - started
    assert code == 0, "training failed"
    meta = json.loads((out / "model" / "reward.json").read_text())
    store = Store(ws.db_path)
    pool = GeneratorPool(ModelRegistry(ws, store))
    judge = make_judge("reward", str(out / "model"), generators=pool)
    held = synthetic_pairs(args.heldout, offset=10_000)
    items = [
        PairItem(str(i), r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"])
        for i, r in enumerate(held)
    ]
    run = judge_pairs(judge, items)
    agree = sum(j.winner == "A" for j in run.judgments) / len(items)
    ties = sum(j.winner == "tie" for j in run.judgments)
    result = {
        "train_pairs": args.train,
        "train_s": round(train_s, 1),
        "run_heldout": meta["heldout"],
        "heldout_pairs": len(items),
        "agreement": round(agree, 4),
        "ties": ties,
        "position_bias": run.summary().first_position_rate,
    }
    many = synthetic_pairs(args.judge_pairs, offset=20_000)
    items = [
        PairItem(str(i), r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"])
        for i, r in enumerate(many)
    ]
    fresh = make_judge("reward", str(out / "model"), generators=pool)
    started = time.time()
    run = judge_pairs(fresh, items)
    result |= {
        "judged_pairs": len(items),
        "judge_s": round(time.time() - started, 1),
        "judge_agreement": round(sum(j.winner == "A" for j in run.judgments) / len(items), 4),
    }
    if not args.skip_local:
        local = make_judge("local", args.model, generators=pool)
        small = [
            PairItem(str(i), r["prompt"], r["chosen"][0]["content"], r["rejected"][0]["content"])
            for i, r in enumerate(held)
        ]
        run = judge_pairs(local, small)
        s = run.summary()
        result |= {
            "local_agreement": round(sum(j.winner == "A" for j in run.judgments) / len(small), 4),
            "local_ties": s.tie,
            "local_position_bias": s.first_position_rate,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
