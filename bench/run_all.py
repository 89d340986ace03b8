"""Run every benchmark, each in its own process, and print one summary table.

    python -m bench                 # full: ~30 min on 2 cores
    python -m bench --quick         # small versions: ~3 min
    python bench/run_all.py --only sampling store
    python -m bench effect [ARGS]   # the effect benchmark (bench/bench_effect.py): ~35 min, not in the full run
    python -m bench live [ARGS]     # live mode against batch training (bench/bench_live.py): ~90 min, not either

Each benchmark prints its own table and writes bench/results/NAME.json; this writes bench/results/summary.json
with the headline figures (each a ratio against its baseline measured in the same run) and the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import RESULTS, describe, load, machine, table, write_result

HERE = Path(__file__).resolve().parent
BENCHES = {  # name: (script, extra args for the full run)
    "validate": ("bench_validate.py", []),
    "sampling": ("bench_sampling.py", []),  # `--alternatives` (other fast paths tried) by hand: +2 min
    "bulk": ("bench_bulk.py", []),
    "labeling": ("bench_labeling.py", []),
    "store": ("bench_store.py", []),
    "memory": ("bench_memory.py", []),
    "training": ("bench_training.py", []),
    "sharing": ("bench_sharing.py", []),
}


def _read(name: str, out_dir: Path) -> dict | None:
    path = out_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def summary_rows(out_dir: Path) -> list[list[str]]:
    rows = []
    if (v := _read("validate", out_dir)) is not None:
        plain = next(r for r in v["results"] if r["case"] == "validate, plain")
        rows.append(
            [
                f"validate {v['n_pairs']:,} pairs",
                f"{plain['seconds']:.2f} s",
                f"{v['baseline']['extrapolated_seconds']:.1f} s (seed validator, difflib)",
                f"{v['speedup_vs_baseline']:.0f}x",
                "-",
            ]
        )
    if (s := _read("sampling", out_dir)) is not None:
        h = s["headline"]
        rows.append(
            [
                f"sample a pair of {s['tokens_per_response']}-token responses",
                f"{h['seconds']:.2f} s",
                f"{h['baseline_seconds']:.2f} s (plain fp32 generate, one batch)",
                f"{h['ratio']:.2f}x",
                ">= 3x",
            ]
        )
        two = s["results"]["plain fp32 generate, two calls"]["median_s"]
        rows.append(
            [
                "  same, vs two separate plain calls",
                f"{h['seconds']:.2f} s",
                f"{two:.2f} s",
                f"{h['ratio_vs_two_calls']:.2f}x",
                ">= 3x",
            ]
        )
    if (b := _read("bulk", out_dir)) is not None:
        h = b["headline"]
        rows.append(
            [
                f"bulk sampling, {b['prompts']} prompts x 2 x {b['max_new_tokens']} tokens, whole process",
                f"{h['tokens_per_s']:.0f} tok/s",
                f"{h['baseline_tokens_per_s']:.0f} tok/s (plain fp32 generate, one prompt at a time)",
                f"{h['ratio']:.2f}x",
                ">= 6x",
            ]
        )
    if (lab := _read("labeling", out_dir)) is not None:
        pre, base = lab["service"]["prefetch"], lab["service"]["on_demand"]
        rows.append(
            [
                "label click -> next pair (service), p50",
                f"{pre['p50_s'] * 1000:.1f} ms",
                f"{base['p50_s']:.2f} s (sampled on demand)",
                f"{base['p50_s'] / pre['p50_s']:.0f}x",
                "< 0.2 s",
            ]
        )
        if lab.get("http"):
            http = lab["http"]
            rows.append(
                [
                    "label click -> next pair (HTTP API), p50",
                    f"{http['p50_s'] * 1000:.1f} ms",
                    f"{base['p50_s']:.2f} s (sampled on demand)",
                    f"{base['p50_s'] / http['p50_s']:.0f}x",
                    "< 0.2 s",
                ]
            )
    if (st := _read("store", out_dir)) is not None:
        for key, what in (("open/threads", "16 writer threads"), ("open/processes", "16 writer processes")):
            f, b = st["writes"][f"{key}/fast"], st["writes"][f"{key}/baseline"]
            rows.append(
                [
                    f"label write p99, {what}, {f['labels_each']} each",
                    f"{f['p99_ms']:.2f} ms",
                    f"{b['p99_ms']:.2f} ms (SQLite busy handler)",
                    f"{b['p99_ms'] / f['p99_ms']:.1f}x",
                    "< 20 ms",
                ]
            )
        e = st["export"]
        rows.append(
            [
                f"export {e['pairs']:,} pairs to a datasets snapshot",
                f"{e['median_s']:.2f} s",
                f"{e['jsonl_median_s']:.2f} s (same rows to JSONL)",
                f"{e['jsonl_median_s'] / e['median_s']:.2f}x",
                "< 10 s",
            ]
        )
    if (m := _read("memory", out_dir)) is not None:
        h = m["headline"]
        rows.append(
            [
                "app peak RSS with the model loaded",
                f"{h['peak_mb']:.0f} MB",
                f"{h['baseline_peak_mb']:.0f} MB (float32 weights)",
                f"{h['ratio']:.2f}x",
                "< 2048 MB",
            ]
        )
    if (t := _read("training", out_dir)) is not None:
        h, settings = t["headline"], t["settings"]
        rows.append(
            [
                f"DPO+LoRA training tokens/s, {settings['pairs']} pairs, {settings['steps']} steps",
                f"{h['tokens_per_s']:.0f} tok/s (loss gap {h['final_loss_gap']:.3f})",
                f"{h['baseline_tokens_per_s']:.0f} tok/s (TRL DPOTrainer defaults, native precision)",
                f"{h['ratio']:.2f}x",
                ">= 2.5x, loss within 0.02",
            ]
        )
        if (sw := t.get("sweep")) is not None:
            rows.append(
                [
                    f"  beta sweep of {len(sw['betas'])} runs sharing the reference pass",
                    f"{sw['sweep_s']:.0f} s",
                    f"{sw['baseline_sweep_s']:.0f} s ({len(sw['betas'])} TRL-default runs)",
                    f"{sw['speedup']:.2f}x",
                    ">= 3x",
                ]
            )
        rows.append(
            [
                "  model FLOPs utilisation (vs the measured matmul rate of its precision)",
                f"{100 * h['mfu']:.1f}%",
                f"{100 * t['results']['trl-default']['mfu']:.1f}%",
                "-",
                "-",
            ]
        )
        rows.append(
            [
                "LoRA training run peak RSS",
                f"{h['peak_rss_mb']:.0f} MB",
                f"{t['results']['trl-default']['peak_rss_mb']:.0f} MB",
                "-",
                "< 6144 MB",
            ]
        )
    if (sh := _read("sharing", out_dir)) is not None:
        h, solo = sh["headline"], sh["results"]["solo"]["tokens_per_s"]
        plan = sh["results"]["side by side, plan"]
        rows.append(
            [
                f"training beside a labeler (a label every {sh['read_s']:g} s)",
                f"{plan['tokens_per_s']:.0f} tok/s, label p50 {1000 * h['label_p50_s']:.0f} ms",
                f"{solo:.0f} tok/s (training alone); no plan: {100 * h['no_plan_share_of_solo']:.0f}%",
                f"{100 * h['share_of_solo']:.0f}%",
                ">= 70%, p50 < 0.2 s",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["effect"]:  # the whole loop's effect, run on its own (it takes half an hour)
        from bench.bench_effect import main as effect

        return effect(argv[1:])
    if argv[:1] == ["live"]:  # live mode against batch training, with a simulated labeler (over an hour)
        from bench.bench_live import main as live

        return live(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small versions of every benchmark")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these")
    parser.add_argument(
        "--workspace", default=None, help="workspace for the model cache (default bench/results/.cache)"
    )
    args = parser.parse_args(argv)
    info = machine()
    print(f"AlignStudio benchmarks{' (quick)' if args.quick else ''} — {describe(info)}", flush=True)
    timings, failed = {}, []
    started_all = time.perf_counter()
    for name, (script, full_args) in BENCHES.items():
        if args.only and name not in args.only:
            continue
        cmd = [sys.executable, str(HERE / script)] + (["--quick"] if args.quick else full_args)
        if args.workspace and name not in ("validate", "store"):  # these two need no model
            cmd += ["--workspace", args.workspace]
        print(f"\n== {name}: {' '.join(cmd[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.call(cmd, cwd=HERE.parent)
        timings[name] = round(time.perf_counter() - started, 1)
        if code != 0:
            failed.append(name)
            print(f"!! {name} exited with {code}", flush=True)
    rows = summary_rows(RESULTS)
    print("\n" + table(rows, ["measure", "AlignStudio", "baseline (same run)", "ratio", "target"]))
    total = round(time.perf_counter() - started_all, 1)
    print(f"\n{describe(info)}; load avg now {load()}; took {total} s ({timings})")
    write_result(
        "summary",
        {
            "machine": info,
            "quick": args.quick,
            "seconds": total,
            "bench_seconds": timings,
            "failed": failed,
            "load_after": load(),
            "rows": [dict(zip(["measure", "alignstudio", "baseline", "ratio", "target"], r)) for r in rows],
        },
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
