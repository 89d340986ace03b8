"""Benchmark: training beside labeling on one machine: the worker's throughput, and label -> next pair latency.

The real pieces: the app's services (`Services.build`: prefetch feed, labeling service, generator pool) in this
process, and a LoRA DPO run of the default settings on the embedded SmolLM2 started through the training
queue (`RunManager.start`: the worker subprocess the Train tab launches). An annotator labels a pair every
`--read` seconds, and each label -> next-pair is timed, while the worker trains.

Cases, in one run, one after the other:
  * solo: the worker alone (the baseline of the throughput ratio);
  * side by side, no plan (ALIGNSTUDIO_SHARING=off): both processes use every core, as before;
  * side by side, with the plan (core.cpu_share): the app decodes on one core while training, the worker
    trains on the rest (all of them when the app is idle), its idle threads sleep, at a lower priority.
Training throughput is the tokens TRL counts between the first metrics line after the window opens and the
last one inside it (at least `--steps-in-window` steps), per second.

    python bench/bench_sharing.py [--quick] [--window 120] [--read 8] [--workspace DIR]

Prints a table and writes bench/results/sharing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alignstudio.core.errors import UserError
from bench.bench_labeling import TARGET_P50_S, _summary, _wait_ready
from bench.bench_training import make_pairs
from bench.common import describe, embedded_model, load, machine, table, write_result

TARGET_SHARE = 0.70
WAIT_S = 60  # a click that waits longer counts as such (and the annotator keeps waiting)


def _rows(runs, name: str) -> list[dict]:
    return [r for r in runs.metrics(name) if r.get("tokens") is not None]


def _wait_rows(runs, name: str, count: int, limit: float) -> list[dict]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        rows = _rows(runs, name)
        if len(rows) >= count:
            return rows
        if runs.status(name).state not in ("queued", "running"):
            raise RuntimeError(f"run {name} ended early: {runs.status(name).error}")
        time.sleep(0.5)
    raise RuntimeError(f"run {name}: fewer than {count} steps in {limit:.0f} s")


def _throughput(rows: list[dict], opened: float) -> dict:
    """Tokens/s between the first metrics line at or after `opened` and the last line."""
    inside = [r for r in rows if r["time"] >= opened]
    first, last = inside[0], inside[-1]
    seconds = last["time"] - first["time"]
    return {
        "tokens_per_s": round((last["tokens"] - first["tokens"]) / seconds, 1),
        "steps": len(inside) - 1,
        "seconds": round(seconds, 1),
        "threads": sorted({r.get("threads") for r in inside if r.get("threads")}),
    }


def run_case(services, config, spec, *, label: bool, window: float, read: float, steps: int) -> dict:
    runs, labeling = services.runs.manager, services.labeling
    name = runs.start(spec)
    try:
        _wait_rows(runs, name, 2, 900)  # loaded and stepping
        opened = time.time()
        latencies, empty, timeouts = [], 0, 0
        shown = labeling.next_pair(config) if label else None
        while time.time() - opened < window or len([r for r in _rows(runs, name) if r["time"] >= opened]) <= steps:
            if time.time() - opened > 4 * window:
                break
            if not label:
                time.sleep(1.0)
                continue
            time.sleep(read)  # the annotator reads the pair
            feed = services.feeds.feed(config)
            empty += feed.ready() == 0
            started = time.perf_counter()
            labeling.label(shown, "left", annotator="bench")
            try:
                shown = labeling.next_pair(config, timeout=WAIT_S)
            except UserError:  # nothing came in WAIT_S: the annotator sat idle that long
                timeouts += 1
                shown = labeling.next_pair(config, timeout=3600)
            latencies.append(time.perf_counter() - started)
        result = _throughput(_rows(runs, name), opened)
    finally:
        runs.cancel(name)
        runs.wait(name, timeout=600)
    if label:
        result["labeling"] = _summary(latencies) | {"clicks_with_empty_queue": empty, f"waits_over_{WAIT_S}s": timeouts}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 45 s window")
    parser.add_argument("--window", type=float, default=None, help="seconds measured per case (default 120)")
    parser.add_argument("--read", type=float, default=8.0, help="seconds the annotator reads each pair")
    parser.add_argument("--tokens", type=int, default=96, help="new tokens per sampled response")
    parser.add_argument("--steps-in-window", type=int, default=3)
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args(argv)
    window = args.window or (45.0 if args.quick else 120.0)

    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services
    from alignstudio.services.sampling.prefetch import FeedConfig
    from alignstudio.services.sampling.settings import SamplingSettings
    from alignstudio.training.spec import RunSpec

    model = embedded_model(args.workspace)
    info = machine()
    print(f"training beside labeling: LoRA DPO + an annotator every {args.read:g} s — {describe(info)}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="alignstudio-bench-") as tmp:
        data = Path(tmp) / "pairs.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in make_pairs(128)))
        services = Services.build(Workspace.open(Path(tmp) / "ws"), str(model))
        spec = RunSpec(method="dpo", model=services.default_model, data=str(data), max_steps=400)
        config = FeedConfig("default", services.default_model, None, SamplingSettings(max_new_tokens=args.tokens))
        try:
            services.labeling.next_pair(config)  # starts the feed and loads the model
            _wait_ready(services.feeds.feed(config), services.feeds.depth, 900)
            for case, sharing, label in (
                ("solo", "on", False),
                ("side by side, no plan", "off", True),
                ("side by side, plan", "on", True),
            ):
                os.environ["ALIGNSTUDIO_SHARING"] = sharing  # read by the app's pool and the worker's launch
                print(f"  {case} ...", flush=True)
                results[case] = run_case(
                    services, config, spec, label=label, window=window, read=args.read, steps=args.steps_in_window
                )
                print(f"  {case}: {json.dumps(results[case])[:300]}", flush=True)
                _wait_ready(services.feeds.feed(config), services.feeds.depth, 900)
        finally:
            os.environ.pop("ALIGNSTUDIO_SHARING", None)
            services.close()

    solo = results["solo"]["tokens_per_s"]
    rows = []
    for case, r in results.items():
        r["share_of_solo"] = round(r["tokens_per_s"] / solo, 3)
        lab = r.get("labeling")
        rows.append(
            [
                case,
                f"{r['tokens_per_s']:.0f} tok/s",
                f"{r['share_of_solo']:.0%}",
                f"{lab['p50_s'] * 1000:.0f} ms" if lab else "-",
                f"{lab['p90_s'] * 1000:.0f} ms" if lab else "-",
                f"{lab['clicks']}" if lab else "-",
            ]
        )
    print(table(rows, ["case", "training", "of solo", "label->next p50", "p90", "clicks"]))
    plan = results["side by side, plan"]
    write_result(
        "sharing",
        {
            "machine": info,
            "window_s": window,
            "read_s": args.read,
            "tokens": args.tokens,
            "results": results,
            "headline": {
                "share_of_solo": plan["share_of_solo"],
                "target_share": TARGET_SHARE,
                "label_p50_s": plan["labeling"]["p50_s"],
                "target_p50_s": TARGET_P50_S,
                "no_plan_share_of_solo": results["side by side, no plan"]["share_of_solo"],
            },
            "load_after": load(),
        },
        Path(args.out_dir) if args.out_dir else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
