"""Benchmark: one pair of 128-token sampled responses from SmolLM2-135M-Instruct, AlignStudio's sampler vs
plain float32 `generate`.

Baselines (same process, interleaved with the fast path so they share the load):
  * plain float32 `generate`, the two responses in one batched call (per-row temperature processor: what
    AlignStudio did before) — the headline ratio;
  * plain float32 `generate`, two separate calls (temperature 0.7, then 1.0).
Fast path: the sampler exactly as the app and CLI build it (`GeneratorPool` -> `Generator.complete`): bf16
weights in oneDNN-packed linear layers, the lean decoding loop with a partial-top-k nucleus.
Every call is held to exactly N new tokens (`min_new_tokens`), so all cases do the same work.
`--alternatives` also times the other candidates that were measured (bf16 `generate`, bf16 + static KV
cache, the lean loop on unpacked bf16 and on float32; `--compile` adds torch.compile of the decoder).
It also reports how close the outputs are: greedy tokens agreeing with float32, and the mean per-token
log-probability, under the float32 model, of the texts each sampler produced.

    python bench/bench_sampling.py [--quick] [--alternatives] [--threads N] [--workspace DIR]

Prints a table and writes bench/results/sampling.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    bench_workspace,
    describe,
    embedded_model,
    interleaved,
    load,
    machine,
    ratio,
    table,
    write_result,
)

PROMPTS = [
    [{"role": "user", "content": "Give me three tips for better sleep."}],
    [{"role": "user", "content": "What is the capital of France, and why is it famous?"}],
    [{"role": "user", "content": "Write a short poem about the sea."}],
]


def _plain_generate(model, tokenizer, messages, temperatures, top_p, n):
    """Plain transformers `generate`, float32; one row per temperature (one call for the batch)."""
    import torch
    from transformers import LogitsProcessorList

    from alignstudio.services.sampling.sampler import RowTemperature

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    batch = tokenizer([text] * len(temperatures), return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        if len(temperatures) == 1:
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=temperatures[0],
                top_p=top_p,
                top_k=0,
                max_new_tokens=n,
                min_new_tokens=n,
                pad_token_id=tokenizer.pad_token_id,
            )
        else:
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=1.0,
                top_p=top_p,
                top_k=0,
                max_new_tokens=n,
                min_new_tokens=n,
                pad_token_id=tokenizer.pad_token_id,
                logits_processor=LogitsProcessorList([RowTemperature(torch.tensor(temperatures))]),
            )
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)


def _mean_logprob(model, tokenizer, messages, texts: list[str]) -> dict:
    """Mean per-token log-probability of `texts` after the prompt, under `model` (float32, untempered):
    the mean over texts and its standard error (a few texts at temperature 1.0 vary a lot)."""
    import torch

    prefix = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    values = []
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if not ids:
                continue
            full = torch.tensor([prefix_ids + ids])
            logp = torch.log_softmax(model(input_ids=full).logits[0, :-1].float(), dim=-1)
            target = full[0, 1:]
            token_lp = logp.gather(1, target.unsqueeze(1)).squeeze(1)[len(prefix_ids) - 1 :]
            values.append(float(token_lp.mean()))
    if len(values) < 2:
        return {"mean": values[0] if values else float("nan"), "stderr": float("nan"), "texts": len(values)}
    return {
        "mean": round(statistics.fmean(values), 4),
        "stderr": round(statistics.stdev(values) / len(values) ** 0.5, 4),
        "texts": len(values),
    }


def _greedy_agreement(fast_gen, reference_model, tokenizer, n: int) -> list[int]:
    """Per prompt: how many of the first n greedy tokens the fast path shares with float32 `generate`."""
    import torch

    from alignstudio.services.sampling.decoding import decode

    agree = []
    for messages in PROMPTS:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        batch = tokenizer([text], return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            ref = reference_model.generate(
                **batch, do_sample=False, max_new_tokens=n, min_new_tokens=n, pad_token_id=tokenizer.pad_token_id
            )[0, batch["input_ids"].shape[1] :]
        # greedy through the fast path: a temperature so low that sampling is argmax
        fast = decode(
            fast_gen.model,
            batch["input_ids"],
            batch["attention_mask"],
            torch.tensor([1e-4]),
            top_p=1.0,
            max_new_tokens=n,
            min_new_tokens=n,
            eos_token_ids=fast_gen.eos_token_ids,
            pad_token_id=fast_gen.pad_token_id,
        )[0]
        same = 0
        for a, b in zip(ref.tolist(), fast.tolist()):
            if a != b:
                break
            same += 1
        agree.append(same)
    return agree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 tokens, 2 repeats, no extras")
    parser.add_argument("--tokens", type=int, default=None, help="new tokens per response (default 128)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5, quick 2)")
    parser.add_argument("--alternatives", action="store_true", help="also time the other candidates")
    parser.add_argument("--compile", action="store_true", help="with --alternatives: also torch.compile")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--workspace", default=None, help="workspace for the model cache")
    parser.add_argument("--out-dir", default=None)
    args = parser.parse_args(argv)
    n = args.tokens or (64 if args.quick else 128)
    repeats = args.repeats or (2 if args.quick else 5)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from alignstudio.core.models import load_causal_lm, load_tokenizer
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.core.store import Store
    from alignstudio.services.sampling.generators import GeneratorPool
    from alignstudio.services.sampling.sampler import Generator

    ws = bench_workspace(args.workspace)
    folder = embedded_model(args.workspace)
    info = machine()
    print(f"sampling: a pair of {n}-token responses from SmolLM2-135M — {describe(info)}", flush=True)

    tokenizer = load_tokenizer(folder)
    tokenizer.padding_side = "left"
    fp32 = load_causal_lm(folder, dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:  # the app's own loading path, on a throwaway store
        pool = GeneratorPool(ModelRegistry(ws, Store(Path(tmp) / "bench.sqlite")))
        fast = pool.get("smollm2")
    messages, temps, top_p = PROMPTS[0], [0.7, 1.0], 0.95
    texts: dict[str, list[str]] = {"baseline": [], "fast": []}

    def baseline_batch():
        texts["baseline"].extend(_plain_generate(fp32, tokenizer, messages, temps, top_p, n))

    def baseline_separate():
        return [_plain_generate(fp32, tokenizer, messages, [t], top_p, n)[0] for t in temps]

    def fast_pair():
        texts["fast"].extend(
            fast.complete([messages, messages], temps, top_p=top_p, max_new_tokens=n, min_new_tokens=n, seed=None)
        )

    cases = {
        "plain fp32 generate, one batch": baseline_batch,
        "plain fp32 generate, two calls": baseline_separate,
        "AlignStudio sampler (default)": fast_pair,
    }
    if args.alternatives:
        bf16 = load_causal_lm(folder, dtype=torch.bfloat16)
        bf16_gen = Generator("bf16", bf16, tokenizer, lean=False)
        lean_bf16 = Generator("lean-bf16", bf16, tokenizer, lean=True)
        lean_fp32 = Generator("lean-fp32", fp32, tokenizer, lean=True)

        def call(gen, **extra):
            return lambda: gen.complete(
                [messages, messages], temps, top_p=top_p, max_new_tokens=n, min_new_tokens=n, seed=None, **extra
            )

        def static_generate():
            from transformers import LogitsProcessorList

            from alignstudio.services.sampling.sampler import RowTemperature

            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            batch = tokenizer([text] * 2, return_tensors="pt", add_special_tokens=False)
            with torch.inference_mode():
                bf16.generate(
                    **batch,
                    do_sample=True,
                    temperature=1.0,
                    top_p=top_p,
                    top_k=0,
                    max_new_tokens=n,
                    min_new_tokens=n,
                    pad_token_id=tokenizer.pad_token_id,
                    cache_implementation="static",
                    logits_processor=LogitsProcessorList([RowTemperature(torch.tensor(temps))]),
                )

        cases |= {
            "alt: bf16 generate": call(bf16_gen),
            "alt: bf16 generate + static cache": static_generate,
            "alt: lean loop, bf16 unpacked": call(lean_bf16),
            "alt: lean loop, fp32": call(lean_fp32),
        }
        if args.compile:
            from transformers import CompileConfig, LogitsProcessorList

            from alignstudio.services.sampling.sampler import RowTemperature

            compiled = load_causal_lm(folder, dtype=torch.bfloat16)
            config = CompileConfig(mode="default")
            config._compile_all_devices = True

            def compiled_generate():
                text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                batch = tokenizer([text] * 2, return_tensors="pt", add_special_tokens=False)
                with torch.inference_mode():
                    compiled.generate(
                        **batch,
                        do_sample=True,
                        temperature=1.0,
                        top_p=top_p,
                        top_k=0,
                        max_new_tokens=n,
                        min_new_tokens=n,
                        pad_token_id=tokenizer.pad_token_id,
                        cache_implementation="static",
                        compile_config=config,
                        logits_processor=LogitsProcessorList([RowTemperature(torch.tensor(temps))]),
                    )

            import time

            started = time.perf_counter()
            compiled_generate()  # the compile itself, reported separately
            compile_s = time.perf_counter() - started
            cases["alt: bf16 + static cache + torch.compile"] = compiled_generate

    load_before = load()
    results = interleaved(cases, repeats)
    load_after = load()
    texts["baseline"], texts["fast"] = texts["baseline"][-2 * repeats :], texts["fast"][-2 * repeats :]
    base = results["plain fp32 generate, one batch"]
    base_sep = results["plain fp32 generate, two calls"]
    for r in results.values():
        r["ratio_vs_one_batch"] = ratio(base["median_s"], r["median_s"])
        r["ratio_vs_two_calls"] = ratio(base_sep["median_s"], r["median_s"])
        r["cpu_ratio_vs_one_batch"] = ratio(base["median_cpu_s"], r["median_cpu_s"])

    quality = {}
    if not args.quick:
        quality["greedy_tokens_agreeing_with_fp32_of_32"] = _greedy_agreement(fast, fp32, tokenizer, 32)
    quality["mean_fp32_logprob_per_token"] = {
        "baseline_samples": _mean_logprob(fp32, tokenizer, messages, texts["baseline"]),
        "fast_samples": _mean_logprob(fp32, tokenizer, messages, texts["fast"]),
    }

    rows = [
        [
            name,
            f"{r['median_s']:.2f}",
            f"{r['median_cpu_s']:.2f}",
            f"{r['ratio_vs_one_batch']:.2f}x",
            f"{r['ratio_vs_two_calls']:.2f}x",
        ]
        for name, r in results.items()
    ]
    print(table(rows, ["case", "median s", "cpu s", "vs fp32 batch", "vs fp32 two calls"]))
    print(f"load avg before {load_before}, after {load_after}")
    print(f"output check: {quality}")
    headline = results["AlignStudio sampler (default)"]
    payload = {
        "benchmark": "sampling",
        "machine": info,
        "load_before": load_before,
        "load_after": load_after,
        "tokens_per_response": n,
        "repeats": repeats,
        "dtype": str(pool.dtype),
        "fast_path": "bf16 weights, oneDNN-packed linears, lean decode loop with partial-top-k nucleus",
        "baseline": "plain float32 transformers generate; headline ratio vs one batched call",
        "results": results,
        "quality": quality,
        "headline": {
            "seconds": headline["median_s"],
            "baseline_seconds": base["median_s"],
            "ratio": headline["ratio_vs_one_batch"],
            "ratio_vs_two_calls": headline["ratio_vs_two_calls"],
            "target_ratio": 3.0,
        },
    }
    if args.alternatives and args.compile:
        payload["compile_seconds"] = round(compile_s, 1)
    print(f"wrote {write_result('sampling', payload, args.out_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
