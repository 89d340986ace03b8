"""`alignstudio generate`: one sampled answer per prompt from a base model, a version or a run folder.

Reads a prompts file ({"prompt": text or messages, optional "id"} per line), writes a JSONL file with the
prompt, the completion, the model name and the sampling settings. Seeded runs are reproducible (each batch
is seeded from --seed and its position). The output appears only when complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tqdm import tqdm

from ..core.errors import UserError
from ..core.formats import load_prompts
from ..core.registry import ModelRegistry
from ..core.store import Store
from ..services.generators import GeneratorPool
from .common import workspace


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate one answer per prompt with a model or a trained run",
                       description="Sample one completion per prompt; --model takes a registry name, a model "
                                   "version, a run folder (its model/) or a checkpoint folder.")
    p.add_argument("--model", required=True, help="model name, version, run folder or checkpoint folder")
    p.add_argument("--prompts", required=True, help="prompts file (JSONL/CSV/Parquet with a 'prompt' field)")
    p.add_argument("--out", required=True, help="output JSONL file")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (0.05-2.0)")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0, help="seed for reproducible sampling")
    p.add_argument("--batch-size", type=int, default=4, help="prompts per generate call")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    p.set_defaults(func=run)


def check_settings(args) -> None:
    if not 0.05 <= args.temperature <= 2.0:
        raise UserError(f"--temperature must be between 0.05 and 2.0, got {args.temperature}")
    if not 0.0 < args.top_p <= 1.0:
        raise UserError(f"--top-p must be in (0, 1], got {args.top_p}")
    if not 1 <= args.max_new_tokens <= 4096:
        raise UserError(f"--max-new-tokens must be between 1 and 4096, got {args.max_new_tokens}")
    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")


def run(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".jsonl":
        raise UserError(f"--out must be a .jsonl file, got {out.name}")
    check_settings(args)
    prompts = load_prompts(args.prompts)
    if args.limit is not None:
        prompts = prompts[: args.limit]
    ws = workspace(args)
    generator = GeneratorPool(ModelRegistry(ws, Store(ws.db_path))).get(args.model)
    params = {"temperature": args.temperature, "top_p": args.top_p, "max_new_tokens": args.max_new_tokens,
              "seed": args.seed}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle, \
                tqdm(total=len(prompts), desc="generating", unit="prompt") as bar:
            for start in range(0, len(prompts), args.batch_size):
                batch = prompts[start:start + args.batch_size]
                texts = generator.complete([p.messages for p in batch], [args.temperature] * len(batch),
                                           top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                                           seed=args.seed + start)
                for item, text in zip(batch, texts):
                    handle.write(json.dumps({"id": item.id, "prompt": item.messages, "completion": text,
                                             "model": generator.name, "params": params},
                                            ensure_ascii=False) + "\n")
                bar.update(len(batch))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"wrote {len(prompts)} completions from {generator.name} to {out}")
    return 0
