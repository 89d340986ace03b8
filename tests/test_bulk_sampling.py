"""Bulk sampling: many prompts per decode (`Generator.complete_many`, `sample_pairs`), finished rows leaving the
batch early (`decode(prune=True)`), reproducible seeded runs, and the CLI and prefetch that use it. Tiny model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from alignstudio.core.models import load_causal_lm, load_tokenizer
from alignstudio.services.sampling.decoding import decode
from alignstudio.services.sampling.sampler import Generator, sample_pairs
from alignstudio.services.sampling.settings import SamplingSettings

PROMPTS = [
    [{"role": "user", "content": text}]
    for text in (
        "Hi.",
        "Give me one tip for better sleep.",
        "Write two sentences about the sea and the wind at night.",
        "What is 2 + 2?",
        "Name three colours of the rainbow, in order, and say why the sky is blue.",
    )
]


@pytest.fixture(scope="module")
def generator(tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    return Generator("tiny", load_causal_lm(tiny_model_dir), tokenizer)


def _batch(generator, prompts):
    texts = [generator.tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    return generator.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)


def test_finished_rows_leave_the_batch_and_the_others_decode_the_same(generator):
    """Greedy, so every row's tokens are fixed: with rows leaving early, each row still gets exactly the
    tokens it gets in the full batch, and a finished row is padded after its end token."""
    batch = _batch(generator, PROMPTS[:4])
    args = dict(top_p=1e-9, max_new_tokens=12, pad_token_id=generator.pad_token_id)
    free = decode(generator.model, batch["input_ids"], batch["attention_mask"], torch.ones(4), eos_token_ids=[], **args)
    stop = int(free[0, 2])  # row 0 ends at its third token: a quarter of the batch done, so it leaves
    full = decode(
        generator.model, batch["input_ids"], batch["attention_mask"], torch.ones(4), eos_token_ids=[stop], **args
    )
    pruned = decode(
        generator.model,
        batch["input_ids"],
        batch["attention_mask"],
        torch.ones(4),
        eos_token_ids=[stop],
        prune=True,
        **args,
    )
    assert torch.equal(pruned, full)
    first_end = full[0].tolist().index(stop)
    assert (pruned[0, first_end + 1 :] == generator.pad_token_id).all()


def test_complete_many_returns_rows_in_order_and_a_seed_repeats_the_whole_call(generator):
    rows = PROMPTS * 2
    temps = [0.7, 1.0] * 5
    greedy = generator.complete_many(rows, temps, top_p=1e-9, max_new_tokens=8, seed=None, batch_rows=3)
    one_by_one = [generator.complete([row], [1.0], top_p=1e-9, max_new_tokens=8, seed=None)[0] for row in rows]
    assert greedy == one_by_one  # sorted by length and batched, yet each text is back at its own row
    args = dict(top_p=0.9, max_new_tokens=10, batch_rows=4)
    first = generator.complete_many(rows, temps, seed=11, **args)
    assert generator.complete_many(rows, temps, seed=11, **args) == first
    assert generator.complete_many(rows, temps, seed=12, **args) != first


def test_sample_pairs_gives_one_pair_per_prompt_with_its_settings(generator):
    settings = SamplingSettings(max_new_tokens=10, seed=4, similarity_threshold=1.0)
    pairs = sample_pairs(PROMPTS, settings, generator, prompt_set="bulk")
    assert [p.messages for p in pairs] == PROMPTS
    for pair in pairs:
        assert pair.model_a == pair.model_b == "tiny" and pair.prompt_set == "bulk" and pair.attempts == 1
        assert pair.params_a["temperature"] == 0.7 and pair.params_b["temperature"] == 1.0
        assert pair.params_a["seed"] == 4 and pair.params_a["max_new_tokens"] == 10
    again = sample_pairs(PROMPTS, settings, generator, prompt_set="bulk")
    assert [(p.text_a, p.text_b) for p in again] == [(p.text_a, p.text_b) for p in pairs]


def test_a_prompt_whose_answers_stay_identical_is_skipped_and_the_rest_kept(generator):
    """Greedy answers at both temperatures are identical: every attempt is near-identical, so None."""
    settings = SamplingSettings(
        temperature_a=0.05, temperature_b=0.05, top_p=1e-9, max_new_tokens=6, seed=1, max_attempts=2
    )
    assert sample_pairs(PROMPTS[:3], settings, generator) == [None, None, None]


def test_cli_sample_writes_every_prompt_in_order_and_repeats_with_a_seed(tiny_model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": p[0]["content"]}) + "\n" for i, p in enumerate(PROMPTS))
    )

    def run(out):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "alignstudio",
                "--workspace",
                str(tmp_path / "ws"),
                "sample",
                "--prompts",
                str(prompts),
                "--model",
                str(tiny_model_dir),
                "--out",
                str(out),
                "--max-new-tokens",
                "8",
                "--seed",
                "9",
                "--similarity-threshold",
                "1.0",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return [json.loads(line) for line in out.read_text().splitlines()]

    rows = run(tmp_path / "a.jsonl")
    assert [r["id"] for r in rows] == [f"p{i}" for i in range(len(PROMPTS))]
    assert [r["prompt"] for r in rows] == PROMPTS
    assert [(r["response_a"], r["response_b"]) for r in run(tmp_path / "b.jsonl")] == [
        (r["response_a"], r["response_b"]) for r in rows
    ]
