"""`alignstudio sample`: two responses per prompt into a JSONL file of unlabeled pairs; with two system prompts,
synthetic pairs, which `--chosen a|b` also stores in the store as labeled (source synthetic)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from ..core.errors import UserError
from ..services.sampling.settings import SamplingSettings
from ..services.training import RunSpec
from .common import add_endpoints_arg, add_sampling_args, add_setting, configure_endpoints, sampling_settings, services

GROUP = 64  # prompts per bulk call: big enough to fill decoding batches, small enough for a live progress bar


def register(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="sample two responses per prompt (unlabeled pairs) into a JSONL file",
        description="Sample two responses per prompt from one model (two temperatures) or two "
        "models; near-identical pairs are resampled, and skipped if they stay so.",
    )
    p.add_argument("--prompts", required=True, help="prompt file (JSONL/CSV/Parquet with a 'prompt' field)")
    p.add_argument("--model", default=RunSpec.default("model"), help="model name, version or checkpoint folder")
    p.add_argument("--model-b", default=None, help="second model for response B (default: same model)")
    add_endpoints_arg(p)
    p.add_argument("--out", required=True, help="output JSONL, one line per prompt")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    synthetic = p.add_argument_group("synthetic pairs (the same model under two system prompts)")
    add_setting(synthetic, SamplingSettings, "system_a", metavar="TEXT")
    add_setting(synthetic, SamplingSettings, "system_b", metavar="TEXT")
    synthetic.add_argument(
        "--chosen",
        choices=["a", "b"],
        default=None,
        help="the side whose system prompt asks for the better answer: the pairs are also "
        "stored as labeled, with source synthetic",
    )
    add_sampling_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..services.sampling.prompt_sets import load_prompts
    from ..services.sampling.sampler import sample_pairs
    from ..services.sampling.synthetic import check_chosen, store_labeled

    out = Path(args.out)
    if out.suffix.lower() != ".jsonl":
        raise UserError(f"--out must be a .jsonl file, got {out.name}")
    prompts = load_prompts(args.prompts)
    if args.limit is not None:
        if args.limit < 1:
            raise UserError("--limit must be at least 1")
        prompts = prompts[: args.limit]
    settings = sampling_settings(args, system_a=args.system_a, system_b=args.system_b)
    check_chosen(settings, args.chosen)
    opened = services(args)
    configure_endpoints(args)
    gen_a = opened.generators.get(args.model)
    gen_b = opened.generators.get(args.model_b) if args.model_b else None
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    written = skipped = 0
    pairs = []
    try:
        with (
            os.fdopen(fd, "w", encoding="utf-8") as handle,
            tqdm(total=len(prompts), desc="sampling pairs", unit="prompt") as progress,
        ):  # closed before an error
            for number, start in enumerate(range(0, len(prompts), GROUP)):
                group = prompts[start : start + GROUP]  # batched across prompts (sampler.sample_pairs)
                seeded = settings if args.seed is None else replace(settings, seed=args.seed + number * 7919)
                for item, pair in zip(group, sample_pairs([i.messages for i in group], seeded, gen_a, gen_b)):
                    if pair is None:
                        skipped += 1
                        continue
                    handle.write(_line(item, pair, args.chosen))
                    written += 1
                    pairs.append(pair)
                progress.update(len(group))
        if args.chosen and pairs:  # the store and the file together: a failed store write leaves no file
            store_labeled(opened.store, pairs, args.chosen, prompt_set=Path(args.prompts).stem)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(
        f"wrote {written} pairs to {out}" + (f" ({skipped} prompts skipped: near-identical answers)" if skipped else "")
    )
    if args.chosen:
        print(f"stored {len(pairs)} labeled pairs (chosen: side {args.chosen}, source synthetic)")
    return 0


def _line(item, pair, chosen: str | None) -> str:
    """One output line: the prompt, both responses and how each was made."""
    return (
        json.dumps(
            {
                "id": item.id,
                "prompt": item.messages,
                "response_a": pair.text_a,
                "response_b": pair.text_b,
                "model_a": pair.model_a,
                "model_b": pair.model_b,
                "params_a": pair.params_a,
                "params_b": pair.params_b,
                "similarity": round(pair.similarity, 4),
            }
            | ({"chosen": chosen} if chosen else {}),
            ensure_ascii=False,
        )
        + "\n"
    )
