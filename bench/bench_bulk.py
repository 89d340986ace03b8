"""Benchmark: bulk sampling (`alignstudio sample`, rounds), 48 prompts x 2 responses x up to 96 tokens from
SmolLM2-135M-Instruct, batched across prompts vs one prompt at a time.

Cases (same process, same prompts from data/prompts.jsonl, answers end where the model ends them):
  * baseline: plain float32 `generate`, one prompt per call (its two responses in one batch of 2, a per-row
    temperature processor), on the first `--baseline-prompts` prompts (it is slow: its rate is what counts);
  * one at a time: AlignStudio's `sample_pair`, one prompt per call (as `sample`, rounds and prefetch
    sampled before bulk sampling), on the same prompts;
  * bulk: `sample_pairs` on all prompts (rows sorted by length, 64 per decode, finished rows leave early);
  * whole process: `alignstudio sample` as a subprocess on all prompts: start-up and model load included.
Every rate is generated tokens per second (the tokenizer's count of the texts each case produced).

    python bench/bench_bulk.py [--quick] [--prompts 48] [--tokens 96] [--workspace DIR]

Prints a table and writes bench/results/bulk.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, bench_workspace, describe, embedded_model, load, machine, table, write_result


def _tokens(tokenizer, texts: list[str]) -> int:
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def _plain_pairs(model, tokenizer, prompts, settings) -> list[str]:
    """Plain transformers `generate`, float32, one prompt per call (A and B rows in one batch)."""
    import torch
    from transformers import LogitsProcessorList

    from alignstudio.services.sampling.sampler import RowTemperature

    texts = []
    temperatures = torch.tensor([settings.temperature_a, settings.temperature_b])
    for messages in prompts:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        batch = tokenizer([text, text], return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=1.0,
                top_p=settings.top_p,
                top_k=0,
                max_new_tokens=settings.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                logits_processor=LogitsProcessorList([RowTemperature(temperatures)]),
            )
        texts += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
    return texts


def _texts(pairs) -> list[str]:
    return [t for p in pairs if p is not None for t in (p.text_a, p.text_b)]


def _cli(ws_root: Path, model_folder: Path, prompt_file: Path, n: int, tokens: int, out: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TOKENIZERS_PARALLELISM="false")
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alignstudio",
            "--workspace",
            str(ws_root),
            "sample",
            "--prompts",
            str(prompt_file),
            "--model",
            str(model_folder),
            "--out",
            str(out),
            "--limit",
            str(n),
            "--max-new-tokens",
            str(tokens),
            "--seed",
            "3",
        ],
        check=True,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 prompts, 4 for the slow cases, 48 tokens")
    parser.add_argument("--prompts", type=int, default=None, help="prompts for bulk and the CLI (default 48)")
    parser.add_argument("--baseline-prompts", type=int, default=None, help="prompts for the slow cases (8)")
    parser.add_argument("--tokens", type=int, default=None, help="max new tokens per response (default 96)")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args(argv)
    n = args.prompts or (16 if args.quick else 48)
    n_slow = args.baseline_prompts or (4 if args.quick else 8)
    tokens = args.tokens or (48 if args.quick else 96)

    import torch

    from alignstudio.core.formats import load_prompts
    from alignstudio.core.models import load_causal_lm, load_tokenizer
    from alignstudio.services.sampling.sampler import Generator, sample_pair, sample_pairs
    from alignstudio.services.sampling.settings import SamplingSettings

    ws = bench_workspace(args.workspace)
    folder = embedded_model(args.workspace)
    info = machine()
    print(f"bulk sampling: {n} prompts x 2 x up to {tokens} tokens from SmolLM2-135M — {describe(info)}", flush=True)
    prompt_file = ROOT / "data" / "prompts.jsonl"
    prompts = [item.messages for item in load_prompts(prompt_file)][:n]
    settings = SamplingSettings(max_new_tokens=tokens, seed=3)
    tokenizer = load_tokenizer(folder)
    tokenizer.padding_side = "left"
    model = load_causal_lm(folder, dtype=torch.float32).eval()
    gen = Generator("smollm2", model, tokenizer)
    gen.complete([prompts[0]], [1.0], top_p=0.95, max_new_tokens=4, seed=0)  # warm-up

    results = {}

    def record(case: str, seconds: float, texts: list[str], prompt_count: int) -> None:
        count = _tokens(tokenizer, texts)
        results[case] = {
            "seconds": round(seconds, 2),
            "tokens": count,
            "prompts": prompt_count,
            "tokens_per_s": round(count / seconds, 2),
        }
        print(f"  {case}: {seconds:.1f} s, {count} tokens, {count / seconds:.1f} tokens/s", flush=True)

    start = time.perf_counter()
    texts = _plain_pairs(model, tokenizer, prompts[:n_slow], settings)
    record("plain fp32 generate, one prompt at a time", time.perf_counter() - start, texts, n_slow)
    start = time.perf_counter()
    pairs = [sample_pair(p, settings, gen) for p in prompts[:n_slow]]
    record("sample_pair, one prompt at a time", time.perf_counter() - start, _texts(pairs), n_slow)
    start = time.perf_counter()
    pairs = sample_pairs(prompts, settings, gen)
    record("bulk: sample_pairs", time.perf_counter() - start, _texts(pairs), n)
    del model, gen
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pairs.jsonl"
        seconds = _cli(ws.root, folder, prompt_file, n, tokens, out)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        record(
            "whole process: alignstudio sample",
            seconds,
            [t for r in rows for t in (r["response_a"], r["response_b"])],
            n,
        )

    base = results["plain fp32 generate, one prompt at a time"]["tokens_per_s"]
    for row in results.values():
        row["ratio"] = round(row["tokens_per_s"] / base, 2)
    headline = results["whole process: alignstudio sample"]
    print(
        table(
            [
                [case, f"{r['prompts']}", f"{r['seconds']:.1f} s", f"{r['tokens_per_s']:.1f}", f"{r['ratio']:.2f}x"]
                for case, r in results.items()
            ],
            ["case", "prompts", "time", "tokens/s", "vs plain"],
        )
    )
    write_result(
        "bulk",
        {
            "machine": info,
            "prompts": n,
            "slow_prompts": n_slow,
            "max_new_tokens": tokens,
            "results": results,
            "headline": {
                "tokens_per_s": headline["tokens_per_s"],
                "baseline_tokens_per_s": base,
                "ratio": headline["ratio"],
            },
            "load_after": load(),
        },
        Path(args.out_dir) if args.out_dir else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
