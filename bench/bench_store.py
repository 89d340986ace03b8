"""Benchmark: the store under concurrent annotators, and export of a large snapshot.

Writes: W writers x N labels (`Store.add_preference`, the call a label click makes) against one SQLite file,
as threads of one process (how the app serves annotators) and as separate processes (CLI jobs next to the
app); open loop (each writer's clicks fall at random times, R labels/s offered in all, latency counted from
when a click was due: the headline) and closed loop (back to back, as fast as the store goes). Per-label
latency p50 / p99 / p99.9 / max. Baseline, in the same run: the same Store with the previous write path (no
writer queue: SQLite's busy handler sleeps and retries).

Export: P preference pairs imported into a fresh store, then `export_snapshot(kind="dpo")` writes the
`datasets` snapshot (and it is loaded back to check the row count). Reference, in the same run: the same rows
written as a JSONL file. A one-pass breakdown shows where the snapshot's time goes.

    python bench/bench_store.py [--quick] [--writers 16] [--labels 1000] [--pairs 100000]

Prints a table and writes bench/results/store.json.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import describe, load, machine, percentile, ratio, table, write_result


def _store_class(kind: str):
    from alignstudio.core.store import Store

    if kind == "fast":
        return Store

    class BusyHandlerStore(Store):
        """The write path before the writer queue: BEGIN IMMEDIATE straight away, SQLite's busy handler
        (sleep and retry) when another writer holds the lock. Everything else is the real Store."""

        def _write(self):
            return _NoQueueTx(self._conn())

    return BusyHandlerStore


class _NoQueueTx:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _prepare(path: Path, writers: int) -> list[str]:
    from alignstudio.core.store import Store

    store = Store(path)
    pairs = [
        store.add_pair(
            [{"role": "user", "content": f"prompt {i}"}], f"answer a {i}", f"answer b {i}", model_a="m", model_b="m"
        )
        for i in range(writers)
    ]
    store.close()
    return pairs


def _write_labels(store, pair_id: str, who: str, count: int, gap: float | None, seed: int) -> list[float]:
    """`count` labels by one writer. Closed loop (`gap` None): back to back, latency of each call. Open loop:
    the clicks are due at random (Poisson) times `gap` seconds apart on average, and latency runs from when
    a click was due, so a writer held up is charged for every click that queued behind it."""
    import random

    rng = random.Random(seed)
    latencies = []
    due = time.perf_counter()
    for i in range(count):
        if gap is not None:
            due += rng.expovariate(1.0 / gap)
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        else:
            due = time.perf_counter()
        store.add_preference(pair_id, "A" if i % 2 else "B", annotator=who, shown_left="A", rationale=f"r{i}")
        latencies.append(time.perf_counter() - due)
    return latencies


def _process_worker(args) -> list[float]:
    kind, path, pair_id, who, count, gap, seed, start_at = args
    store = _store_class(kind)(path)
    while time.time() < start_at:  # start together
        time.sleep(0.001)
    try:
        return _write_labels(store, pair_id, who, count, gap, seed)
    finally:
        store.close()


def concurrent_writes(kind: str, mode: str, writers: int, labels: int, rate: float | None, tmp: Path) -> dict:
    """`writers` threads (sharing one Store, as the app's request threads do) or processes (a Store each)
    writing `labels` labels each; `rate` = offered labels per second over all writers (None: back to back)."""
    from alignstudio.core.store import Store

    path = tmp / f"{kind}-{mode}-{rate}.sqlite"
    pairs = _prepare(path, writers)
    gap = None if rate is None else writers / rate
    if mode == "threads":
        store = _store_class(kind)(path)
        results: list[list[float]] = [[] for _ in range(writers)]

        def run(i):
            results[i] = _write_labels(store, pairs[i], f"w{i}", labels, gap, i)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(writers)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    else:
        with mp.get_context("fork").Pool(writers) as pool:
            start_at = time.time() + 1.0
            started = time.perf_counter() + 1.0
            results = pool.map(
                _process_worker,
                [(kind, str(path), pairs[i], f"w{i}", labels, gap, i, start_at) for i in range(writers)],
            )
            elapsed = time.perf_counter() - started
    flat = [x for r in results for x in r]
    stored = len(Store(path).labels())
    return {
        "writers": writers,
        "labels_each": labels,
        "offered_per_s": rate,
        "stored": stored,
        "seconds": round(elapsed, 2),
        "labels_per_s": round(len(flat) / elapsed),
        "p50_ms": round(percentile(flat, 50) * 1000, 3),
        "p99_ms": round(percentile(flat, 99) * 1000, 3),
        "p999_ms": round(percentile(flat, 99.9) * 1000, 2),
        "max_ms": round(max(flat) * 1000, 1),
        "worst_writer_p99_ms": round(max(percentile(r, 99) for r in results) * 1000, 2),
    }


def _synthetic_rows(n: int) -> list[dict]:
    import random

    rng = random.Random(0)
    words = [
        "model",
        "answer",
        "data",
        "training",
        "reward",
        "policy",
        "token",
        "prompt",
        "response",
        "human",
        "judge",
        "preference",
        "pair",
        "chosen",
        "rejected",
        "length",
        "signal",
        "gradient",
        "quality",
        "helpful",
        "honest",
        "clear",
        "example",
        "question",
    ]

    def text(k):
        return " ".join(rng.choices(words, k=k)).capitalize() + "."

    return [
        {
            "messages": [{"role": "user", "content": f"Question {i}: {text(12)}"}],
            "chosen": text(60),
            "rejected": text(55),
        }
        for i in range(n)
    ]


def _jsonl_export(store, out: Path) -> int:
    """Reference in the same run: the same DPO rows written as a JSONL file (`export --out x.jsonl`)."""
    from alignstudio.core.formats import write_records
    from alignstudio.services.data.snapshots import dpo_rows

    rows = dpo_rows(store)
    write_records(rows, out)
    return len(rows)


def export_bench(pairs: int, repeats: int, tmp: Path) -> dict:
    from datasets import Dataset, load_from_disk

    from alignstudio.core.store import Store
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.data.snapshots import dpo_rows, export_snapshot, fingerprint

    ws = Workspace.open(tmp / "export-ws")
    store = Store(ws.db_path)
    started = time.perf_counter()
    store.import_preferences(_synthetic_rows(pairs))
    import_s = time.perf_counter() - started
    fast, base = [], []
    fingerprints = set()
    for _ in range(repeats):  # interleaved
        t = time.perf_counter()
        snap = export_snapshot(store, ws, "dpo")
        fast.append(time.perf_counter() - t)
        fingerprints.add(snap.fingerprint)
        loaded = load_from_disk(str(snap.path))
        loaded_rows = len(loaded)
        del loaded
        shutil.rmtree(snap.path)
        t = time.perf_counter()
        _jsonl_export(store, tmp / "export.jsonl")
        base.append(time.perf_counter() - t)
    stages = {}  # where the time goes, one pass
    t = time.perf_counter()
    store.preference_rows()
    stages["store query + JSON parse"] = time.perf_counter() - t
    t = time.perf_counter()
    rows = dpo_rows(store)
    stages["majority per pair (includes the query)"] = time.perf_counter() - t
    t = time.perf_counter()
    fingerprint(rows)
    stages["fingerprint"] = time.perf_counter() - t
    t = time.perf_counter()
    dataset = Dataset.from_list(rows)
    stages["Dataset.from_list"] = time.perf_counter() - t
    t = time.perf_counter()
    dataset.save_to_disk(str(tmp / "stage-save"))
    stages["save_to_disk"] = time.perf_counter() - t
    fast.sort()
    base.sort()
    return {
        "pairs": pairs,
        "import_s": round(import_s, 2),
        "rows_exported": snap.rows,
        "loaded_rows": loaded_rows,
        "median_s": round(fast[len(fast) // 2], 3),
        "jsonl_median_s": round(base[len(base) // 2], 3),
        "runs_s": [round(x, 3) for x in fast],
        "jsonl_runs_s": [round(x, 3) for x in base],
        "stages_s": {k: round(v, 3) for k, v in stages.items()},
        "fingerprint_stable": len(fingerprints) == 1,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 x 200 labels, 20,000 pairs")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--labels", type=int, default=None, help="labels per writer (default 1000, quick 200)")
    parser.add_argument(
        "--rate",
        type=float,
        default=1600.0,
        help="open loop: labels per second offered by all writers together (default 1600)",
    )
    parser.add_argument("--pairs", type=int, default=None, help="pairs to export (default 100000, quick 20000)")
    parser.add_argument("--repeats", type=int, default=None, help="export repeats (default 3, quick 1)")
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args(argv)
    labels = args.labels or (200 if args.quick else 1000)
    pairs = args.pairs or (20_000 if args.quick else 100_000)
    repeats = args.repeats or (1 if args.quick else 3)
    info = machine()
    print(f"store: {args.writers} writers x {labels} labels; export of {pairs:,} pairs — {describe(info)}", flush=True)
    load_before = load()
    writes = {}
    loops = [("open", args.rate), ("closed", None)]
    with tempfile.TemporaryDirectory(prefix="alignstudio-bench-") as tmp:
        for loop, rate in loops:
            for mode in ("threads", "processes"):
                for kind in ("baseline", "fast"):
                    key = f"{loop}/{mode}/{kind}"
                    writes[key] = concurrent_writes(kind, mode, args.writers, labels, rate, Path(tmp))
                    print(f"  {key:<24} {writes[key]}", flush=True)
        export = export_bench(pairs, repeats, Path(tmp))
    load_after = load()
    rows = []
    for loop, rate in loops:
        for mode in ("threads", "processes"):
            b, f = writes[f"{loop}/{mode}/baseline"], writes[f"{loop}/{mode}/fast"]
            what = f"{args.writers} {mode}, " + (f"{rate:g}/s offered" if rate else "back to back")
            for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("max_ms", "max")):
                rows.append(
                    [
                        f"write {label}, {what}",
                        f"{f[key]:.2f} ms",
                        f"{b[key]:.2f} ms",
                        f"{ratio(b[key], f[key]):.2f}x",
                        "",
                    ]
                )
            rows.append(
                [
                    f"throughput, {what}",
                    f"{f['labels_per_s']}/s",
                    f"{b['labels_per_s']}/s",
                    f"{ratio(f['labels_per_s'], b['labels_per_s']):.2f}x",
                    f"{f['stored']:,} stored",
                ]
            )
    rows.append(
        [
            f"export {pairs:,} pairs (datasets)",
            f"{export['median_s']:.2f} s",
            f"{export['jsonl_median_s']:.2f} s (JSONL)",
            f"{ratio(export['jsonl_median_s'], export['median_s']):.2f}x",
            f"{export['rows_exported']:,} rows; target 10 s",
        ]
    )
    print(table(rows, ["case", "AlignStudio", "baseline", "ratio", "notes"]))
    print(f"load avg before {load_before}, after {load_after}")
    payload = {
        "benchmark": "store",
        "machine": info,
        "load_before": load_before,
        "load_after": load_after,
        "writes": writes,
        "export": export,
        "baseline": {
            "writes": "same Store, previous write path (SQLite busy handler, no writer queue)",
            "export": "the same rows written as a JSONL file (write_records), same run",
        },
        "targets": {"write_p99_ms": 20, "export_s": 10},
    }
    print(f"wrote {write_result('store', payload, args.out_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
