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
from ..services.evaluation import EvalSettings, generate_answers
from .common import add_endpoints_arg, add_setting, configure_endpoints, services

GENERATE_BATCH_SIZE = 4  # smaller than an evaluation's: one model's answers, often long ones


def register(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="generate one answer per prompt with a model or a trained run",
        description="Sample one completion per prompt; --model takes a registry name, a model "
        "version, a run folder (its model/) or a checkpoint folder.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="model name, version, run folder or checkpoint folder, or a "
        "remote model: openai:MODEL, anthropic:MODEL, ENDPOINT:MODEL",
    )
    add_endpoints_arg(p)
    p.add_argument("--prompts", required=True, help="prompts file (JSONL/CSV/Parquet with a 'prompt' field)")
    p.add_argument("--out", required=True, help="output JSONL file")
    for name in ("max_new_tokens", "temperature", "top_p", "seed"):
        add_setting(p, EvalSettings, name)
    add_setting(p, EvalSettings, "batch_size", default=GENERATE_BATCH_SIZE)
    add_setting(p, EvalSettings, "limit")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..services.sampling.prompt_sets import load_prompts

    out = Path(args.out)
    if out.suffix.lower() != ".jsonl":
        raise UserError(f"--out must be a .jsonl file, got {out.name}")
    settings = EvalSettings(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=args.batch_size,
        limit=args.limit,
    )  # checks the values
    prompts = load_prompts(args.prompts)
    if settings.limit is not None:
        prompts = prompts[: settings.limit]
    opened = services(args)
    configure_endpoints(args)
    generator = opened.generators.get(args.model)
    with tqdm(total=len(prompts), desc="generating", unit="prompt") as bar:
        texts = generate_answers(generator, prompts, settings, progress=lambda done, _: bar.update(done - bar.n))
    params = {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_new_tokens": settings.max_new_tokens,
        "seed": settings.seed,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for item, text in zip(prompts, texts):
                handle.write(
                    json.dumps(
                        {
                            "id": item.id,
                            "prompt": item.messages,
                            "completion": text,
                            "model": generator.name,
                            "params": params,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"wrote {len(prompts)} completions from {generator.name} to {out}")
    return 0
