"""Benchmark: DPO training speed, AlignStudio's default training vs TRL's DPOTrainer with its default settings.

Both train a LoRA adapter on the embedded SmolLM2-135M over the same pairs, in the same order (same seed), with
the same batch size, learning rate, LoRA configuration, max_length and number of steps. They differ in what
each does by default:

- baseline "TRL defaults, native precision": `DPOConfig`'s defaults otherwise: activation checkpointing on (TRL's
  DPO default), the reference forward on every step. TRL 1.x's own default is `bf16=True`; on a CPU without
  native bf16 (no AVX512-BF16/AMX) that autocast runs its matmuls at well under 1 GFLOP/s (0.3 against fp32's
  127 on an AMD EPYC; a quick run took 485 s against our 28 s), so the baseline sets `bf16` to what the CPU
  runs natively; a baseline crippled by a setting nobody would keep would flatter every ratio.
- "TRL, no checkpointing" (with `--no-checkpointing-baseline`): the same without checkpointing, the
  fastest plain TRL (left out by default to keep `python -m bench` under 15 minutes).
- "AlignStudio": the worker's own `make_config` / `load_model` / `make_trainer` on a default `RunSpec`, i.e.
  what `alignstudio train` and the Train tab run (seeded LoRA init, reference pass kept in a cache folder).
- the beta sweep (left out with `--no-sweep`): the same run at 4 betas, one process each, sharing the
  reference-pass cache as a Train-tab sweep does (the first run computes it, the other three read it). Its
  baseline is 4 TRL-default runs; a TRL run's work does not depend on beta (each recomputes the reference
  forward on every step), so the one TRL-default run measured here counts 4 times. The sweep's first run
  is the single "AlignStudio" run of the table.

Each case runs in its own process (so its peak RSS is its own) after the others, on the same machine.
Tokens/s counts the non-padding tokens TRL reports (`num_tokens`: prompt + chosen and prompt + rejected)
over the wall time of trainer construction (tokenizing, and the reference pass where it is precomputed)
plus `train()`; loading the model is left out of both. Loss: the mean training loss of the last quarter
of the steps (the same batches in every case), and the largest per-step difference.
MFU: model FLOPs per trained token = policy forward 2N + backward through frozen weights 2N + reference
forward 2N = 6N (N = parameters of the linear layers incl. the tied lm_head; LoRA's own and attention's
FLOPs are small and left out; recomputation, padding and a prompt's second copy are not useful work),
against the matmul rate measured in the same run for the precision the case trained in (bf16 is measured
only where the CPU runs it natively: emulated, a 2048 x 2048 bf16 matmul takes minutes).

    python bench/bench_training.py [--quick] [--no-sweep] [--workspace DIR]

Prints a table and writes bench/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, describe, embedded_model, machine, table, write_result

TARGET_SPEEDUP = 2.5
TARGET_SWEEP_SPEEDUP = 3.0
SWEEP_BETAS = (0.1, 0.05, 0.2, 0.5)  # the default first: that run is also the single-run case
TARGET_LOSS_GAP = 0.02
TARGET_RSS_MB = 6144
CASES = {
    "trl-default": "TRL defaults, native precision",
    "trl-fp32-no-ckpt": "TRL, no checkpointing",
    "alignstudio": "AlignStudio default",
}


def make_pairs(count: int) -> list[dict]:
    """`count` conversational pairs: the shipped prompts, answered with passages of the held-out text of
    varied lengths (so batches carry realistic padding). Deterministic."""
    prompts = [
        json.loads(line)["prompt"]
        for line in (ROOT / "data" / "prompts.jsonl").read_text().splitlines()
        if line.strip()
    ]
    words = (ROOT / "data" / "heldout_text.txt").read_text().split()
    rows = []
    for i in range(count):
        start = (i * 37) % (len(words) - 200)
        chosen = " ".join(words[start : start + 30 + (i * 13) % 60])
        rejected = " ".join(words[start + 100 : start + 100 + 20 + (i * 29) % 90])
        rows.append(
            {
                "prompt": [{"role": "user", "content": prompts[i % len(prompts)]}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
        )
    return rows


def matmul_gflops(dtype_name: str, size: int = 2048, repeats: int = 7) -> float:
    """This machine's dense matmul rate in GFLOP/s (median of repeats)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def linear_params(model) -> int:
    import torch

    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
    return total


def run_case(case: str, model_folder: Path, data_file: Path, settings: dict, out: Path) -> None:
    """One training run in this process; writes its figures to `out`."""
    import torch
    from transformers import AutoModelForCausalLM

    from alignstudio.core.models import load_tokenizer
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.core.store import Store
    from alignstudio.core.workspace import Workspace
    from alignstudio.training.data import load_training_data
    from alignstudio.training.run_folder import RunFolder
    from alignstudio.training.spec import RunSpec
    from alignstudio.training.trainer_setup import load_model, lora_targets, make_config, make_trainer

    tmp = Path(tempfile.mkdtemp(prefix="alignstudio-bench-train-"))
    spec = RunSpec(
        method="dpo",
        model=str(model_folder),
        data=str(data_file),
        batch_size=settings["batch_size"],
        max_steps=settings["steps"],
        learning_rate=settings["learning_rate"],
        beta=settings["beta"],
        max_length=settings["max_length"],
        save_steps=settings["steps"] + 1,
        logging_steps=1,
        seed=42,
    )
    dataset = load_training_data(spec.data, spec.method).dataset
    if case == "alignstudio":
        workspace = Workspace.open(tmp / "ws")
        run = RunFolder.create(tmp / "run", spec)
        args = make_config(spec, run)
        from transformers import set_seed

        set_seed(spec.seed)  # as the worker does: the same LoRA init, so the sweep's runs share a cache key
        loaded = load_model(spec, ModelRegistry(workspace, Store(workspace.db_path)))
        model = loaded.model
        start = time.perf_counter()
        cache = Path(settings["ref_cache"]) if settings.get("ref_cache") else None
        trainer = make_trainer(spec, args, loaded, dataset, [], ref_cache=cache)
    else:
        from peft import LoraConfig
        from trl import DPOConfig, DPOTrainer

        from alignstudio.core.models import cpu_has_fast_bf16

        args = DPOConfig(
            output_dir=str(tmp / "out"),
            per_device_train_batch_size=spec.batch_size,
            beta=spec.beta,
            learning_rate=spec.learning_rate,
            max_steps=spec.max_steps,
            max_length=spec.max_length,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=spec.seed,
            use_cpu=True,
            disable_tqdm=True,
            bf16=cpu_has_fast_bf16(),
            **({} if case == "trl-default" else {"gradient_checkpointing": False}),
        )
        model = AutoModelForCausalLM.from_pretrained(model_folder, dtype=torch.float32)
        peft_config = LoraConfig(
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            bias="none",
            target_modules=lora_targets(model),
            task_type="CAUSAL_LM",
        )
        tokenizer = load_tokenizer(model_folder)
        start = time.perf_counter()
        trainer = DPOTrainer(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
        )
    setup_s = time.perf_counter() - start
    trainer.train()
    total_s = time.perf_counter() - start
    logs = [row for row in trainer.state.log_history if "loss" in row]
    tokens = max(row.get("num_tokens", 0) for row in logs)
    params = linear_params(trainer.accelerator.unwrap_model(trainer.model))
    out.write_text(
        json.dumps(
            {
                "case": case,
                "beta": spec.beta,
                "setup_s": round(setup_s, 2),
                "train_s": round(total_s - setup_s, 2),
                "total_s": round(total_s, 2),
                "tokens": tokens,
                "tokens_per_s": round(tokens / total_s, 1),
                "losses": [round(float(row["loss"]), 5) for row in logs],
                "linear_params": params,
                "bf16": bool(trainer.args.bf16),
                "activation_checkpointing": bool(trainer.args.activation_checkpointing),
                "precompute_ref_log_probs": bool(getattr(trainer.args, "precompute_ref_log_probs", False)),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 pairs, 2 steps")
    parser.add_argument(
        "--no-checkpointing-baseline", action="store_true", help="also run TRL without activation checkpointing"
    )
    parser.add_argument("--no-sweep", action="store_true", help="leave out the beta sweep of 4 runs")
    parser.add_argument("--workspace", default=None)
    parser.add_argument("--out-dir", default=None)
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)  # child process
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    model_folder = embedded_model(args.workspace)
    if args.case:
        settings = json.loads(args.settings)
        run_case(args.case, model_folder, Path(settings["data_file"]), settings, Path(args.result))
        return 0

    pairs = 8 if args.quick else 128
    settings = {
        "pairs": pairs,
        "batch_size": 4,
        "steps": pairs // 4,
        "learning_rate": 5e-5,
        "max_length": 512,
        "beta": SWEEP_BETAS[0],
    }
    cases = ["trl-default", "alignstudio"]
    if args.no_checkpointing_baseline:
        cases.insert(1, "trl-fp32-no-ckpt")
    sweep_runs = []
    info = machine()
    from alignstudio.core.models import cpu_has_fast_bf16

    peak = {"fp32": round(matmul_gflops("float32"), 1)}
    if cpu_has_fast_bf16():
        peak["bf16"] = round(matmul_gflops("bfloat16"), 1)
    results = {}
    with tempfile.TemporaryDirectory(prefix="alignstudio-bench-train-") as tmp:
        data_file = Path(tmp) / "pairs.jsonl"
        data_file.write_text("".join(json.dumps(row) + "\n" for row in make_pairs(pairs)))
        settings["data_file"] = str(data_file)
        settings["ref_cache"] = str(Path(tmp) / "reference-logps")  # one workspace's cache, shared by the sweep

        def run(case: str, case_settings: dict) -> dict:
            result = Path(tmp) / f"{case}-beta{case_settings['beta']:g}.json"
            command = [
                sys.executable,
                __file__,
                "--case",
                case,
                "--settings",
                json.dumps(case_settings),
                "--result",
                str(result),
            ] + (["--workspace", args.workspace] if args.workspace else [])
            subprocess.run(command, check=True, cwd=ROOT)
            return json.loads(result.read_text())

        for case in cases:
            results[case] = run(case, settings)
        if not args.no_sweep:  # after the single run, which wrote the cache the sweep's other runs read
            sweep_runs = [run("alignstudio", {**settings, "beta": beta}) for beta in SWEEP_BETAS[1:]]
    settings.pop("data_file")
    settings.pop("ref_cache")

    base = results["trl-default"]
    quarter = max(1, len(base["losses"]) // 4)
    for r in results.values():
        r["final_loss"] = round(statistics.mean(r["losses"][-quarter:]), 5)
        r["speedup"] = round(r["tokens_per_s"] / base["tokens_per_s"], 2)
        r["final_loss_gap"] = round(abs(r["final_loss"] - base["final_loss"]), 5)
        r["max_step_loss_gap"] = round(max(abs(a - b) for a, b in zip(r["losses"], base["losses"])), 5)
        r["precision"] = "bf16" if r["bf16"] else "fp32"
        r["mfu"] = round(6 * r["linear_params"] * r["tokens_per_s"] / (peak[r["precision"]] * 1e9), 4)
    fast = results["alignstudio"]
    sweep = None
    if sweep_runs:
        sweep_runs.insert(0, fast)
        total = sum(r["total_s"] for r in sweep_runs)
        sweep = {
            "betas": [r["beta"] for r in sweep_runs],
            "total_s": [r["total_s"] for r in sweep_runs],
            "setup_s": [r["setup_s"] for r in sweep_runs],
            "sweep_s": round(total, 1),
            "baseline_sweep_s": round(len(sweep_runs) * base["total_s"], 1),
            "speedup": round(len(sweep_runs) * base["total_s"] / total, 2),
        }
    rows = [
        [
            CASES[c],
            f"{r['tokens_per_s']:.0f}",
            f"{r['setup_s']:.1f} + {r['train_s']:.1f}",
            f"{r['speedup']:.2f}x",
            f"{r['final_loss']:.4f}",
            f"{r['final_loss_gap']:.4f}",
            f"{100 * r['mfu']:.1f}% {r['precision']}",
            f"{r['peak_rss_mb']:.0f}",
        ]
        for c, r in results.items()
    ]
    print(
        f"\nDPO + LoRA on SmolLM2-135M, {pairs} pairs, batch {settings['batch_size']}, {settings['steps']} steps; "
        f"{describe(info)}; matmul GFLOP/s {peak}"
    )
    print(
        table(
            rows,
            [
                "case",
                "tokens/s",
                "setup + train s",
                "vs TRL default",
                "final loss",
                "loss gap",
                "MFU (of its precision)",
                "peak RSS MB",
            ],
        )
    )
    print(f"target: >= {TARGET_SPEEDUP}x with the final loss within {TARGET_LOSS_GAP}; peak RSS < {TARGET_RSS_MB} MB")
    if sweep:
        print(
            f"beta sweep {sweep['betas']}: {sweep['sweep_s']:.0f} s (runs {sweep['total_s']} s, of which set-up "
            f"incl. the reference pass {sweep['setup_s']} s) vs {sweep['baseline_sweep_s']:.0f} s for "
            f"{len(sweep['betas'])} TRL-default runs: {sweep['speedup']:.2f}x (target >= {TARGET_SWEEP_SPEEDUP}x)"
        )
    write_result(
        "training",
        {
            "machine": info,
            "settings": settings,
            "matmul_gflops": peak,
            "results": results,
            "sweep": sweep,
            "headline": {
                "tokens_per_s": fast["tokens_per_s"],
                "baseline_tokens_per_s": base["tokens_per_s"],
                "ratio": fast["speedup"],
                "final_loss_gap": fast["final_loss_gap"],
                "mfu": fast["mfu"],
                "peak_rss_mb": fast["peak_rss_mb"],
                "sweep_ratio": sweep["speedup"] if sweep else None,
            },
            "targets": {
                "speedup": TARGET_SPEEDUP,
                "sweep_speedup": TARGET_SWEEP_SPEEDUP,
                "final_loss_gap": TARGET_LOSS_GAP,
                "peak_rss_mb": TARGET_RSS_MB,
            },
        },
        Path(args.out_dir) if args.out_dir else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
