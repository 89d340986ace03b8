"""Benchmark: peak resident memory (VmHWM) of the real app with the model loaded.

Starts `app.py` as a subprocess on the embedded SmolLM2, reads /proc/PID/status right after start-up, then
loads the model and fills the prefetch queue through the HTTP API (`/label_first_pair` and a few labels,
gradio_client), and reads VmHWM (peak) and VmRSS again. Baseline, same run: the same app with
ALIGNSTUDIO_SAMPLER_DTYPE=float32 (the previous default: float32 weights, unpacked).

    python bench/bench_memory.py [--quick] [--workspace DIR]

Prints a table and writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
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
    ratio,
    start_app,
    stop_app,
    table,
    write_result,
)

TARGET_MB = 2048


def proc_memory(pid: int) -> dict:
    """VmHWM (peak resident) and VmRSS of a process, in MB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


def measure(model: Path, tokens: int, labels: int, extra_env: dict) -> dict:
    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="alignstudio-bench-") as tmp:
        proc, url = start_app(Path(tmp) / "ws", model, extra_env)
        try:
            started = proc_memory(proc.pid)
            client = Client(url, verbose=False)
            api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]

            def arguments(endpoint: str) -> dict:
                values = {}
                for param in api[endpoint]["parameters"]:
                    name = param["parameter_name"]
                    if "annotator" in name:
                        values[name] = "bench"
                    elif "reason" in name:
                        values[name] = ""
                    elif name.endswith("model_a"):
                        values[name] = str(model)
                    elif name.endswith("max_new_tokens"):
                        values[name] = tokens
                    else:
                        values[name] = param.get("parameter_default") if param.get("parameter_has_default") else None
                return values

            client.predict(api_name="/label_first_pair", **arguments("/label_first_pair"))
            for _ in range(labels):
                client.predict(api_name="/label_left", **arguments("/label_left"))
            time.sleep(2 * tokens / 50)  # the prefetch thread refills its queue
            loaded = proc_memory(proc.pid)
        finally:
            stop_app(proc)
    return {"after_start_mb": started, "with_model_mb": loaded}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64-token responses, 2 labels")
    parser.add_argument("--workspace", default=None, help="workspace for the model cache")
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args(argv)
    tokens, labels = (64, 2) if args.quick else (128, 5)
    bench_workspace(args.workspace)
    model = embedded_model(args.workspace)
    info = machine()
    print(f"memory: the app with SmolLM2 loaded — {describe(info)}", flush=True)
    load_before = load()
    fast = measure(model, tokens, labels, {})
    print(f"  default: {fast}", flush=True)
    base = measure(model, tokens, labels, {"ALIGNSTUDIO_SAMPLER_DTYPE": "float32"})
    print(f"  float32: {base}", flush=True)
    load_after = load()
    peak, base_peak = fast["with_model_mb"]["VmHWM"], base["with_model_mb"]["VmHWM"]
    rows = [
        [
            "peak RSS (VmHWM), model loaded",
            f"{peak:.0f} MB",
            f"{base_peak:.0f} MB",
            f"{ratio(base_peak, peak):.2f}x",
            f"target < {TARGET_MB} MB",
        ],
        [
            "RSS now (VmRSS), model loaded",
            f"{fast['with_model_mb']['VmRSS']:.0f} MB",
            f"{base['with_model_mb']['VmRSS']:.0f} MB",
            f"{ratio(base['with_model_mb']['VmRSS'], fast['with_model_mb']['VmRSS']):.2f}x",
            "",
        ],
        [
            "peak RSS right after start-up",
            f"{fast['after_start_mb']['VmHWM']:.0f} MB",
            f"{base['after_start_mb']['VmHWM']:.0f} MB",
            "",
            "before the model loads",
        ],
    ]
    print(table(rows, ["case", "AlignStudio", "float32 baseline", "ratio", "notes"]))
    print(f"load avg before {load_before}, after {load_after}")
    payload = {
        "benchmark": "memory",
        "machine": info,
        "load_before": load_before,
        "load_after": load_after,
        "default": fast,
        "float32_baseline": base,
        "target_mb": TARGET_MB,
        "headline": {"peak_mb": peak, "baseline_peak_mb": base_peak, "ratio": ratio(base_peak, peak)},
        "baseline": "same app, ALIGNSTUDIO_SAMPLER_DTYPE=float32 (float32 weights, unpacked)",
    }
    print(f"wrote {write_result('memory', payload, args.out_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
