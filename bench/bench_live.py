"""The live benchmark (issue 37): a policy trained in bursts while a simulated person labels, against batch training.

    python -m bench live                          # three rules, 48 labels each, a label every 8 s (~90 min)
    python -m bench live --pace 4 8 16            # what the pace of labeling does to the figures
    python -m bench live --quick                  # the tiny random model, 8 labels: a smoke test (~2 min)

The labeler is the effect benchmark's rule (bench_effect.RULES: one consistent taste) working at a fixed pace: it
is shown a pair, reads it for --pace seconds, then clicks its verdict (a pair the rule cannot tell apart is
skipped, as a person would). Pairs come from the live session's newest version (LiveService.sample_pairs, with the
effect benchmark's temperatures and length), prefetched in a thread the way the Label tab prefetches, so a click
waits only for the label to be stored and the next pair to be there. A burst runs every K labels (--every) in the
session's trainer process while labeling goes on. At --labels labels it measures:
- the time from the last label to a usable version (held-out accuracy >= 0.6; 0 when the current one already is);
- click-to-next-pair latency p50/p90, over all clicks and over the clicks made while a burst ran;
- the final version's win rate against the base under the rule, with the bootstrap interval (bench_effect.score
  on the held-out prompts, the same seeds and base answers as the effect benchmark).
The batch comparison labels the same number of pairs sampled from the base model (drawn as the live session
draws them, labeled by bench_effect.label), trains with `alignstudio train --method dpo` and the defaults
(bench_effect.train), and scores it the same way. Writes bench/results/live.json (live-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_effect as effect  # noqa: E402
from bench.common import ROOT, bench_workspace, describe, load, machine, percentile, table, write_result  # noqa: E402

USABLE_ACCURACY = 0.6  # issue 37: a version is usable from this held-out preference accuracy on
PREFETCH = 2  # pairs sampled ahead of the labeler


class Prefetcher(threading.Thread):
    """Keeps up to PREFETCH pairs from the newest live version ready (the Label tab's prefetch buffer)."""

    def __init__(self, live, name: str, prompts: list, sampling_for):
        super().__init__(daemon=True)
        self.live, self.name, self.prompts, self.sampling_for = live, name, prompts, sampling_for
        self.ready: queue.Queue = queue.Queue(PREFETCH)
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        i = 0
        try:
            while not self.halt.is_set():
                prompt = self.prompts[i % len(self.prompts)].messages
                pair = self.live.sample_pairs(self.name, [prompt], self.sampling_for(i))[0]
                i += 1
                while pair is not None and not self.halt.is_set():
                    try:
                        self.ready.put(pair, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - reported by the labeler's next wait
            self.error = exc

    def next_pair(self):
        while True:
            if self.error is not None:
                raise self.error
            try:
                return self.ready.get(timeout=0.5)
            except queue.Empty:
                continue


def sampling(max_new_tokens: int):
    """The sampling settings of pair i, for the live policy and the base alike: the effect benchmark's
    temperatures and top_p, a seed per pair."""
    from alignstudio.services.sampling.settings import SamplingSettings

    def sampling_for(i: int) -> SamplingSettings:
        return SamplingSettings(
            temperature_a=effect.TEMPERATURES[0],
            temperature_b=effect.TEMPERATURES[1],
            top_p=effect.TOP_P,
            max_new_tokens=max_new_tokens,
            seed=1000 + i,
        )

    return sampling_for


def base_pairs(base, prompts, sampling_for, chunk: int = 8) -> list[dict]:
    """Pairs from the base model, drawn as the live session draws them (the same sampler, settings and seeds),
    as bench_effect.label takes them."""
    from alignstudio.services.sampling.sampler import sample_pairs

    found = []
    for start in range(0, len(prompts), chunk):
        batch = [p.messages for p in prompts[start : start + chunk]]
        found += [
            {"prompt": p.messages, "a": p.text_a, "b": p.text_b}
            for p in sample_pairs(batch, sampling_for(start), base)
            if p
        ]
        print(f"  sampled {min(start + chunk, len(prompts))}/{len(prompts)} prompts from the base", flush=True)
    return found


def run_live(live, name: str, settings, rule, prompts, labels: int, pace: float, sampling_for) -> dict:
    """The simulated person labels `labels` pairs at `pace`; returns the timings and the final version."""
    from alignstudio.services.live.service import LiveLabel

    live.start(name, settings)
    t0 = time.perf_counter()
    live.wait(name, timeout=900)
    print(f"  live session {name}: ready in {time.perf_counter() - t0:.0f} s", flush=True)
    folder = live.folder(name)
    prefetch = Prefetcher(live, name, prompts, sampling_for)
    prefetch.start()
    clicks, shown, labeled, versions_seen = [], 0, 0, []
    started = time.perf_counter()
    pair = prefetch.next_pair()
    try:
        while labeled < labels:
            shown += 1
            time.sleep(pace)  # reading the two answers
            winner = rule.prefer(pair.text_a, pair.text_b)
            click = time.perf_counter()
            if winner != "tie" and pair.text_a != pair.text_b:
                chosen, rejected = (pair.text_a, pair.text_b) if winner == "a" else (pair.text_b, pair.text_a)
                live.add_labels(name, [LiveLabel(pair.messages, chosen, rejected, pair.pair_id)])
                labeled += 1
                versions_seen.append(pair.version)
                if labeled == labels:
                    last_label = time.perf_counter()
                    break
            training = folder.state().get("state") == "training"
            pair = prefetch.next_pair()
            clicks.append({"seconds": time.perf_counter() - click, "during_burst": training})
    finally:
        prefetch.halt.set()
        prefetch.join(timeout=600)
    usable_s = None
    while True:  # until every burst requested has run
        status = live.status(name)
        acc = status.heldout_accuracy
        if usable_s is None and acc is not None and acc >= USABLE_ACCURACY:
            usable_s = time.perf_counter() - last_label
        if status.idle:
            break
        time.sleep(0.25)
    settled_s = time.perf_counter() - last_label
    status = live.wait(name)
    latencies = [c["seconds"] for c in clicks]
    during = [c["seconds"] for c in clicks if c["during_burst"]]
    bursts = live.bursts(name)
    return {
        "pace_s": pace,
        "labels": labeled,
        "pairs_shown": shown,
        "labeling_s": round(last_label - started, 1),
        "usable_after_last_label_s": None if usable_s is None else round(usable_s, 1),
        "bursts_done_after_last_label_s": round(settled_s, 1),
        "final_version": status.current,
        "final_heldout_accuracy": status.heldout_accuracy,
        "labels_learned": status.labels_learned,
        "heldout_labels": status.heldout_labels,
        "click_to_next_pair": _latency(latencies),
        "click_to_next_pair_during_bursts": _latency(during),
        "versions_labeled_from": sorted(set(versions_seen)),
        "bursts": [
            {k: b.get(k) for k in ("burst", "outcome", "note", "seconds", "new_labels", "heldout_labels", "version")}
            for b in bursts
        ],
    }


def _latency(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50_s": None, "p90_s": None}
    return {"n": len(values), "p50_s": round(percentile(values, 50), 3), "p90_s": round(percentile(values, 90), 3)}


def _score(pool, model: str, rule, eval_prompts, base_answers: list[str]) -> dict:
    gen = pool.get(model)
    answers = effect.answer(gen, eval_prompts, seed=101)  # the seeds the base answered with
    pool.release(model)
    return effect.score(rule, answers, base_answers)


def run_batch(ws, pool, rule, pairs: list[dict], labels: int, work: Path, train_args: list[str], eval_prompts, base):
    rows = effect.label(pairs, rule, labels)  # the same number of labels, on pairs sampled from the base
    data = work / f"batch-{rule.name}-{len(rows)}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = work / f"batch-run-{rule.name}-{len(rows)}"
    shutil.rmtree(out, ignore_errors=True)
    card = effect.train(ws.root, data, out, train_args)
    verdict = card.get("verdict") or {}
    return {
        "labels": len(rows),
        "train_s": round(card["_seconds"], 1),
        "heldout_accuracy": verdict.get("heldout_accuracy"),
        "verdict": verdict.get("headline"),
        "effect": _score(pool, str(out), rule, eval_prompts, base),
    }


def _quick_model(ws) -> str:
    """The tests' tiny random Llama (SmolLM2's tokenizer), written once into the bench workspace."""
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_model import build_tiny_model

    return str(build_tiny_model(ws.root / "tiny-llama"))


def main(argv: list[str] | None = None) -> int:
    from alignstudio.training.live.folder import LiveSettings

    defaults = LiveSettings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", nargs="+", default=list(effect.RULES), choices=sorted(effect.RULES))
    parser.add_argument("--labels", type=int, default=48, help="labels per live session (and for batch)")
    parser.add_argument("--every", type=int, default=defaults.every, help="a burst every K labels")
    parser.add_argument("--pace", type=float, nargs="+", default=[8.0], help="seconds the labeler reads a pair")
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--train-prompts", type=int, default=161, help="prompts sampled from (as in effect)")
    parser.add_argument("--eval-prompts", type=int, default=71, help="held-out prompts answered (as in effect)")
    parser.add_argument("--no-batch", action="store_true", help="skip the batch comparison")
    parser.add_argument("--quick", action="store_true", help="tiny random model, one rule, 8 labels, short answers")
    parser.add_argument("--workspace", default=None)
    args = parser.parse_args(argv)

    from alignstudio.core.registry import ModelRegistry
    from alignstudio.core.store import Store
    from alignstudio.services.live.service import LiveService
    from alignstudio.services.sampling.generators import GeneratorPool

    info = machine()
    print(f"live benchmark{' (quick)' if args.quick else ''} — {describe(info)}", flush=True)
    ws = bench_workspace(args.workspace)
    store = Store(ws.db_path)
    pool = GeneratorPool(ModelRegistry(ws, store))
    live = LiveService(ws, store, pool)
    settings = {"every": args.every}
    max_new_tokens, train_args = effect.MAX_NEW_TOKENS, []
    model = args.model
    if args.quick:
        model = _quick_model(ws)
        args.rules, args.labels, args.pace = args.rules[:1], 8, [0.2]
        args.train_prompts, args.eval_prompts = 32, 8
        settings = {"every": 4, "steps": 2, "learning_rate": 2e-3}
        max_new_tokens, train_args = 24, ["--max-steps", "2"]
    if model != "smollm2":
        train_args = ["--model", model, *train_args]  # after bench_effect.train's own --model: argparse takes this
    # the effect benchmark's cached base pairs and answers where it is the same model; a folder per model otherwise
    work = ws.root / ("effect" if model == "smollm2" else f"live-bench-{Path(model).name}")
    work.mkdir(parents=True, exist_ok=True)
    train_prompts = effect.load_prompts(ROOT / "data" / "prompts.jsonl", args.train_prompts)
    eval_prompts = effect.load_prompts(ROOT / "data" / "eval_prompts.jsonl", args.eval_prompts)
    base = pool.get(model)
    base_answers = effect.cached(
        work / f"base-{len(eval_prompts)}.json", lambda: effect.answer(base, eval_prompts, 101)
    )
    results: dict = {}
    try:
        for name in args.rules:
            rule = effect.RULES[name]
            print(f"\n== rule {name}: {rule.describes}", flush=True)
            for pace in args.pace:
                session = f"bench-{name}-{pace:g}s-{time.strftime('%Y%m%d-%H%M%S')}"
                run = run_live(
                    live,
                    session,
                    LiveSettings(model=model, **settings).check(),
                    rule,
                    train_prompts,
                    args.labels,
                    pace,
                    sampling(max_new_tokens),
                )
                live.stop(session)
                run["effect"] = _score(
                    pool, f"live-{session}-v{run['final_version']}", rule, eval_prompts, base_answers
                )
                results.setdefault(name, {"rule": rule.describes, "live": {}})["live"][f"{pace:g}"] = run
                print(f"  live at pace {pace:g} s: {_line(run)}", flush=True)
            if not args.no_batch:
                pairs = effect.cached(
                    work / f"live-base-pairs-{len(train_prompts)}-{max_new_tokens}.json",
                    lambda: base_pairs(base, train_prompts, sampling(max_new_tokens)),
                )
                batch = run_batch(ws, pool, rule, pairs, args.labels, work, train_args, eval_prompts, base_answers)
                results[name]["batch"] = batch
                e = batch["effect"]
                print(f"  batch: win {e['win_rate']:.2f} {e['ci']}, trained in {batch['train_s']:.0f} s", flush=True)
    finally:
        live.close()
    print("\n" + table(_rows(results), HEADER))
    print(f"\n{describe(info)}; load avg {load()}; eval prompts {len(eval_prompts)}")
    write_result(
        "live-quick" if args.quick else "live",
        {
            "machine": info,
            "model": model,
            "labels": args.labels,
            "every": args.every if not args.quick else settings["every"],
            "eval_prompts": len(eval_prompts),
            "usable_accuracy": USABLE_ACCURACY,
            "results": results,
        },
    )
    return 0


HEADER = [
    "rule",
    "pace",
    "live win vs base [95% CI]",
    "batch win vs base [95% CI]",
    "usable after last label: live / batch",
    "click -> next pair p50 / p90 (during bursts)",
    "bursts kept / run",
]


def _win(e: dict) -> str:
    low, high = e["ci"]
    return f"{e['win_rate']:.2f} [{'-' if low is None else f'{low:.2f}'}, {'-' if high is None else f'{high:.2f}'}]"


def _line(run: dict) -> str:
    c = run["click_to_next_pair"]
    usable = run["usable_after_last_label_s"]
    return (
        f"win {_win(run['effect'])}, v{run['final_version']} (held-out acc {run['final_heldout_accuracy']}), "
        f"usable {'never' if usable is None else f'{usable:.0f} s'} after the last label, "
        f"click->next p50 {c['p50_s']} s p90 {c['p90_s']} s"
    )


def _rows(results: dict) -> list[list[str]]:
    rows = []
    for name, r in results.items():
        batch = r.get("batch")
        for pace, run in r["live"].items():
            c, d = run["click_to_next_pair"], run["click_to_next_pair_during_bursts"]
            usable = run["usable_after_last_label_s"]
            kept = sum(b["outcome"] == "kept" for b in run["bursts"])
            rows.append(
                [
                    name,
                    f"{pace} s",
                    _win(run["effect"]),
                    _win(batch["effect"]) if batch else "-",
                    f"{'never' if usable is None else f'{usable:.0f} s'} / "
                    + (f"{batch['train_s']:.0f} s (acc {batch['heldout_accuracy']})" if batch else "-"),
                    f"{c['p50_s']} / {c['p90_s']} s ({d['p50_s']} / {d['p90_s']} s, n={d['n']})",
                    f"{kept} / {len(run['bursts'])}",
                ]
            )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
