"""Benchmark: labeling latency, from a label click to the next pair on screen, with the real SmolLM2.

Service layer: `LabelingService.label` + `next_pair` on a warm prefetch Feed (the services the app builds,
`Services.build`, default sampler), while the feed samples the next pairs in the background — the clicks
compete with decoding for the CPU, as they do in the app. Between clicks the annotator "reads" for
`--read` seconds. Baseline, same run: the same click without prefetch (label, then sample the next pair on
demand with `pair_for_prompt`).

HTTP (unless --no-http): the real app started as a subprocess (`app.py`), driven with gradio_client:
`/label_first_pair`, then `/label_left` per click — the whole round trip a browser makes (queue, handler,
store, count line), measured client side.

    python bench/bench_labeling.py [--quick] [--clicks 20] [--read 3] [--no-http] [--workspace DIR]

Prints a table and writes bench/results/labeling.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    bench_workspace,
    describe,
    embedded_model,
    load,
    machine,
    percentile,
    ratio,
    start_app,
    stop_app,
    table,
    write_result,
)

TARGET_P50_S = 0.2


def _summary(latencies: list[float]) -> dict:
    return {
        "clicks": len(latencies),
        "p50_s": round(percentile(latencies, 50), 4),
        "p90_s": round(percentile(latencies, 90), 4),
        "max_s": round(max(latencies), 4),
        "mean_s": round(statistics.fmean(latencies), 4),
        "all_s": [round(x, 4) for x in latencies],
    }


def _wait_ready(feed, want: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while feed.ready() < want and time.monotonic() < deadline:
        time.sleep(0.05)


def service_bench(model: Path, clicks: int, read: float, tokens: int, depth: int, baseline_clicks: int) -> dict:
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services
    from alignstudio.services.sampling.prefetch import FeedConfig
    from alignstudio.services.sampling.settings import SamplingSettings

    with tempfile.TemporaryDirectory(prefix="alignstudio-bench-") as tmp:
        services = Services.build(Workspace.open(Path(tmp) / "ws"), str(model), prefetch_depth=depth)
        try:
            settings = SamplingSettings(max_new_tokens=tokens)
            config = FeedConfig("default", services.default_model, None, settings)
            labeling = services.labeling
            shown = labeling.next_pair(config)  # starts the feed, loads the model
            feed = services.feeds.feed(config)
            _wait_ready(feed, depth, 600)  # warm: the queue is full
            latencies, empty = [], 0
            for _ in range(clicks):
                time.sleep(read)  # the annotator reads the pair
                empty += feed.ready() == 0
                started = time.perf_counter()
                labeling.label(shown, "left", annotator="bench")
                shown = labeling.next_pair(config)
                latencies.append(time.perf_counter() - started)
            services.feeds.stop()
            # baseline: no prefetch, the next pair is sampled when the label arrives
            generator = services.generators.get(services.default_model)
            prompts = services.prompt_sets.load("default")
            on_demand = []
            for i in range(baseline_clicks):
                started = time.perf_counter()
                labeling.label(shown, "left", annotator="bench")
                shown = labeling.pair_for_prompt(prompts[i % len(prompts)].messages[-1]["content"], settings, generator)
                on_demand.append(time.perf_counter() - started)
        finally:
            services.close()
    return {"prefetch": _summary(latencies) | {"clicks_with_empty_queue": empty}, "on_demand": _summary(on_demand)}


def http_bench(model: Path, clicks: int, read: float, tokens: int) -> dict:
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="alignstudio-bench-") as tmp:
        workspace = Path(tmp) / "ws"
        proc, url = start_app(workspace, model)
        try:
            client = Client(url, verbose=False)
            api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]

            def arguments(endpoint: str, reason: str = "") -> dict:
                """Keyword arguments by the API's parameter names: the UI's defaults, except who labels,
                the model and the response length."""
                values = {}
                for param in api[endpoint]["parameters"]:
                    name = param["parameter_name"]
                    if "annotator" in name:
                        values[name] = "bench"
                    elif "reason" in name:
                        values[name] = reason
                    elif name.endswith("model_a"):
                        values[name] = str(model)
                    elif name.endswith("max_new_tokens"):
                        values[name] = tokens
                    elif param.get("parameter_has_default"):
                        values[name] = param.get("parameter_default")
                    else:
                        values[name] = None
                return values

            started = time.perf_counter()
            client.predict(api_name="/label_first_pair", **arguments("/label_first_pair"))
            first = time.perf_counter() - started
            time.sleep(max(read, 3 * tokens / 50))  # let the prefetch queue fill
            latencies = []
            for i in range(clicks):
                time.sleep(read)
                started = time.perf_counter()
                client.predict(api_name="/label_left", **arguments("/label_left", f"reason {i}"))
                latencies.append(time.perf_counter() - started)
        finally:
            stop_app(proc)
    return _summary(latencies) | {"first_pair_s": round(first, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 clicks, 64-token responses")
    parser.add_argument("--clicks", type=int, default=None, help="timed clicks (default 20, quick 6)")
    parser.add_argument("--read", type=float, default=None, help="seconds between clicks (default 3, quick 1)")
    parser.add_argument("--tokens", type=int, default=None, help="max new tokens per response (default 128)")
    parser.add_argument("--depth", type=int, default=3, help="prefetch depth (the app's default: 3)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurement")
    parser.add_argument("--workspace", default=None, help="workspace for the model cache")
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args(argv)
    clicks = args.clicks or (6 if args.quick else 20)
    read = args.read if args.read is not None else (1.0 if args.quick else 3.0)
    tokens = args.tokens or (64 if args.quick else 128)
    bench_workspace(args.workspace)
    model = embedded_model(args.workspace)
    info = machine()
    print(
        f"labeling latency: {clicks} clicks, {read:g} s reading, {tokens}-token responses — {describe(info)}",
        flush=True,
    )
    load_before = load()
    service = service_bench(model, clicks, read, tokens, args.depth, 2 if args.quick else 3)
    print(f"  service: { ({k: v for k, v in service['prefetch'].items() if k != 'all_s'}) }", flush=True)
    http = None if args.no_http else http_bench(model, clicks, read, tokens)
    if http:
        print(f"  http: { ({k: v for k, v in http.items() if k != 'all_s'}) }", flush=True)
    load_after = load()
    base = service["on_demand"]["p50_s"]
    rows = [
        [
            "service: label + next_pair, prefetch",
            f"{service['prefetch']['p50_s'] * 1000:.1f} ms",
            f"{service['prefetch']['p90_s'] * 1000:.1f} ms",
            f"{base:.2f} s",
            f"{ratio(base, service['prefetch']['p50_s']):.0f}x",
        ],
        [
            "service: label + sample on demand (baseline)",
            f"{base * 1000:.0f} ms",
            f"{service['on_demand']['p90_s'] * 1000:.0f} ms",
            f"{base:.2f} s",
            "1x",
        ],
    ]
    if http:
        rows.append(
            [
                "HTTP: /label_left via gradio_client",
                f"{http['p50_s'] * 1000:.1f} ms",
                f"{http['p90_s'] * 1000:.1f} ms",
                f"{base:.2f} s",
                f"{ratio(base, http['p50_s']):.0f}x",
            ]
        )
    print(table(rows, ["case", "p50", "p90", "baseline p50", "ratio"]))
    print(f"target p50 < {TARGET_P50_S} s; load avg before {load_before}, after {load_after}")
    payload = {
        "benchmark": "labeling",
        "machine": info,
        "load_before": load_before,
        "load_after": load_after,
        "clicks": clicks,
        "read_s": read,
        "tokens": tokens,
        "prefetch_depth": args.depth,
        "service": service,
        "http": http,
        "target_p50_s": TARGET_P50_S,
        "baseline": "same click, next pair sampled on demand (no prefetch), same run",
    }
    print(f"wrote {write_result('labeling', payload, args.out_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
