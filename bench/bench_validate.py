"""Benchmark: preference-data validation on N synthetic DPO pairs (~60-word responses).

Times `alignstudio.services.data.validation.validate` (median of a few repeats) in plain and conversational
form, with labels, and with a tokenizer when `--tokenizer PATH` is given; and, in the same run, a plain-Python
baseline of the seed guide's validator (word counts, Counter, difflib.SequenceMatcher), which is measured on
a sample of pairs and extrapolated linearly to N (its cost is one SequenceMatcher per pair).

    python bench/bench_validate.py            # 100,000 pairs
    python bench/bench_validate.py --quick    # 10,000 pairs
    python bench/bench_validate.py --n 50000 --tokenizer /path/to/tokenizer

Prints a table and writes bench/results/validate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alignstudio.services.data.validation import validate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "validate.json"
WORDS = (
    "the a model answer data training loss reward policy reference beta token prompt response human judge "
    "preference pair chosen rejected length bias signal gradient learning rate batch step epoch evaluation "
    "quality helpful honest harmless clear short long example question explain because therefore however "
    "first second finally result value simple complex python function returns number list string error"
).split()


def make_pairs(n: int, seed: int = 0, words: int = 60) -> list[dict]:
    """n plain DPO pairs: ~15-word prompts, ~60-word responses (±20), a few exact repeats of prompts."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choices(WORDS, k=k)).capitalize() + "."

    rows = []
    for i in range(n):
        prompt = f"Question {i}: " + text(rng.randint(8, 20))
        rows.append(
            {
                "prompt": prompt,
                "chosen": text(words + rng.randint(-20, 20)),
                "rejected": text(words + rng.randint(-20, 20)),
            }
        )
    return rows


def conversational(rows: list[dict]) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": r["prompt"]}],
            "chosen": [{"role": "assistant", "content": r["chosen"]}],
            "rejected": [{"role": "assistant", "content": r["rejected"]}],
        }
        for r in rows
    ]


def make_labels(n_pairs: int, seed: int = 0) -> list[dict]:
    """Two human labels per pair on a fifth of the pairs, one judge label per pair on all of them."""
    rng = random.Random(seed)
    labels = []
    for i in range(n_pairs):
        pid = f"p{i}"
        labels.append(
            {
                "pair_id": pid,
                "annotator": "judge",
                "source": "judge:bench",
                "verdict": rng.choice("AB"),
                "left": rng.choice("AB"),
            }
        )
        if i % 5 == 0:
            for annotator in ("ann1", "ann2"):
                labels.append(
                    {
                        "pair_id": pid,
                        "annotator": annotator,
                        "source": "human",
                        "verdict": rng.choice(["A", "B", "tie"]),
                        "left": rng.choice("AB"),
                    }
                )
    return labels


def seed_baseline(pairs: list[dict]) -> None:
    """The seed guide's PreferenceDataValidator checks, in plain Python (without its prints)."""
    chosen_lens = [len(p["chosen"].split()) for p in pairs]
    rejected_lens = [len(p["rejected"].split()) for p in pairs]
    float(np.mean(chosen_lens)) / max(float(np.mean(rejected_lens)), 1)
    sum(c > r for c, r in zip(chosen_lens, rejected_lens)) / len(pairs)
    Counter(p["prompt"] for p in pairs)
    sum(1 for p in pairs if p["chosen"].strip() == p["rejected"].strip())
    sims = np.array([SequenceMatcher(None, p["chosen"].lower(), p["rejected"].lower()).ratio() for p in pairs])
    (sims > 0.9).mean(), (sims < 0.1).mean()
    sum(1 for p in pairs if len(p["chosen"].strip()) < 10), sum(1 for p in pairs if len(p["rejected"].strip()) < 10)


def timed(fn, repeats: int) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="number of pairs (default 100000)")
    parser.add_argument("--quick", action="store_true", help="10,000 pairs")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per timing without a tokenizer (median)")
    parser.add_argument("--baseline-sample", type=int, default=2000, help="pairs the difflib baseline really runs on")
    parser.add_argument("--tokenizer", default=None, help="optional tokenizer folder: also time token checks")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    n = args.n or (10_000 if args.quick else 100_000)

    rows = make_pairs(n)
    conv_rows = conversational(rows)
    labels = make_labels(n)
    results: list[dict] = []

    def record(name: str, seconds: float, times: list[float], note: str = "", report=None) -> None:
        entry = {"case": name, "n": n, "seconds": round(seconds, 4), "runs": [round(t, 4) for t in times], "note": note}
        if report is not None:
            entry["findings"] = [f"{f.severity}:{f.check}" for f in report.findings]
        results.append(entry)
        print(f"  {name:<38} {seconds:9.3f} s   {note}", flush=True)

    print(f"validate() on {n:,} synthetic DPO pairs ({os.cpu_count()} CPUs, Python {platform.python_version()})")
    sample = rows[: min(args.baseline_sample, n)]
    base_sample, base_times, _ = timed(lambda: seed_baseline(sample), 1)
    baseline = base_sample * n / len(sample)
    record(
        "seed baseline (difflib), extrapolated",
        baseline,
        [base_sample],
        f"measured {base_sample:.3f} s on {len(sample):,} pairs, scaled x{n / len(sample):.0f}",
    )

    t, times, rep = timed(lambda: validate(rows), args.repeats)
    record("validate, plain", t, times, f"{baseline / t:.0f}x faster than the baseline", rep)
    t_conv, times, rep = timed(lambda: validate(conv_rows), args.repeats)
    record("validate, conversational", t_conv, times, f"{baseline / t_conv:.0f}x faster than the baseline", rep)
    t_lab, times, rep = timed(lambda: validate(rows, labels=labels), args.repeats)
    record("validate, plain + labels", t_lab, times, f"{len(labels):,} label records", rep)

    tokenizer_path = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer_path = args.tokenizer
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        t_tok, times, rep = timed(lambda: validate(rows, tokenizer=tokenizer, max_length=args.max_length), 1)
        record("validate, plain + tokenizer", t_tok, times, f"max_length {args.max_length}, 1 run", rep)
        t_tok, times, rep = timed(lambda: validate(conv_rows, tokenizer=tokenizer, max_length=args.max_length), 1)
        record("validate, conversational + tokenizer", t_tok, times, "chat template, 1 run", rep)

    speedup = baseline / results[1]["seconds"]
    print(f"speed-up, plain validate vs extrapolated difflib baseline: {speedup:.0f}x")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "validate",
                "n_pairs": n,
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "tokenizer": tokenizer_path,
                "baseline": {
                    "method": "seed validator with difflib.SequenceMatcher",
                    "sample_pairs": len(sample),
                    "sample_seconds": round(base_sample, 4),
                    "extrapolated_seconds": round(baseline, 4),
                },
                "speedup_vs_baseline": round(speedup, 1),
                "results": results,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
