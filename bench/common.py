"""Shared benchmark helpers: the machine description, timing with medians, percentiles, the embedded model,
and the JSON writer. Every benchmark measures its baseline in the same process, interleaved with the fast
path where it can, so both see the same load; results carry the load average before and after."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in flags if f.startswith(("avx512_bf16", "amx", "avx512f", "avx2")))
    except OSError:
        pass
    return []


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    """What the numbers were measured on."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_flags": cpu_flags(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg": load(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    try:
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        info["memory_gb"] = round(int(mem) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    return info


def describe(info: dict) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores, torch {info.get('torch', '?')} "
        f"({info.get('torch_threads', '?')} threads), load avg {info['load_avg']}"
    )


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def interleaved(cases: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, dict]:
    """Run every case `repeats` times in rounds (A B C, A B C, ...) so slow spells hit all alike;
    returns per case: median wall and CPU seconds and every run."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            wall, cpu, _ = timed(fn)
            runs[name].append((wall, cpu))
    return {
        name: {
            "median_s": round(statistics.median(w for w, _ in r), 4),
            "median_cpu_s": round(statistics.median(c for _, c in r), 4),
            "runs_s": [round(w, 4) for w, _ in r],
        }
        for name, r in runs.items()
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(round(q / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def bench_workspace(path: str | Path | None = None):
    """The workspace benches use: `--workspace`, else a cache under bench/results/.cache (git-ignored), so
    the embedded model is converted once and reused by every bench run."""
    from alignstudio.core.workspace import Workspace

    return Workspace.open(Path(path) if path else RESULTS / ".cache" / "ws")


def embedded_model(workspace: str | Path | None = None) -> Path:
    """The embedded SmolLM2 as a safetensors folder (ensure_embedded converts the GGUF the first time)."""
    from alignstudio.core.models import ensure_embedded

    return ensure_embedded(bench_workspace(workspace).models_dir)


def write_result(name: str, payload: dict, out_dir: Path | None = None) -> Path:
    out = Path(out_dir or RESULTS) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.partial")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out)
    return out


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) for c, w in zip(r, widths))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def ratio(baseline: float, value: float) -> float:
    return round(baseline / value, 2) if value else float("inf")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(workspace: Path, model: Path, extra_env: dict | None = None, timeout: float = 300.0):
    """The real app in a subprocess (loopback), its log in the workspace's parent; returns (proc, url)."""
    port = _free_port()
    env = os.environ | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    env |= extra_env or {}
    log = open(workspace.parent / f"app-{port}.log", "ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "--workspace",
            str(workspace),
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with {proc.returncode}; see {log.name}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    stop_app(proc)
    raise RuntimeError(f"app did not start in {timeout:.0f} s; see {log.name}")


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
