"""The embedded SmolLM2-135M-Instruct, for real: converted once, then sampled from."""

import json
import subprocess
import sys
import time

import pytest
from servers import ROOT

from alignstudio.core.models import EMBEDDED_NAME, ensure_embedded
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.services.sampling.sampler import Generator, sample_pairs
from alignstudio.services.sampling.settings import SamplingSettings

pytestmark = pytest.mark.real_model


def test_embedded_model_is_converted_once(real_workspace):
    folder = ensure_embedded(real_workspace.models_dir)
    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    started = time.perf_counter()
    assert ensure_embedded(real_workspace.models_dir) == folder
    assert time.perf_counter() - started < 1.0 and weights.stat().st_mtime_ns == stamp
    assert not list(folder.glob("*.bin")) and (folder / "tokenizer.json").exists()


def test_real_pair_from_smollm2(real_workspace):
    registry = ModelRegistry(real_workspace, Store(real_workspace.db_path))
    ref = registry.resolve("smollm2")
    assert ref.name == EMBEDDED_NAME
    model, tokenizer = registry.load(ref)
    # the first token is "The" (15%) or "L" (14%, "L'Étoile, la Cité...") at temperature 1: one draw is luck,
    # so four pairs with A near greedy must name Paris at least once (a real answer, not noise)
    pairs = sample_pairs(
        [[{"role": "user", "content": "What is the capital of France?"}]] * 4,
        SamplingSettings(temperature_a=0.05, max_new_tokens=40, seed=0),
        Generator(ref.name, model, tokenizer),
    )
    assert all(p is not None and p.text_a and p.text_b and p.text_a != p.text_b for p in pairs)
    assert any("Paris" in p.text_a + p.text_b for p in pairs)


def test_cli_sample_on_smollm2(real_workspace, tmp_path):
    out = tmp_path / "pairs.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alignstudio",
            "--workspace",
            str(real_workspace.root),
            "sample",
            "--prompts",
            str(ROOT / "data" / "prompts.jsonl"),
            "--model",
            "smollm2",
            "--out",
            str(out),
            "--limit",
            "2",
            "--max-new-tokens",
            "32",
            "--seed",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2
    assert all(line["response_a"] and line["response_b"] != line["response_a"] for line in lines)
