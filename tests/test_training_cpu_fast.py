"""The CPU training fast path gives what plain TRL gives: the compact LM head's log-probs, metrics and gradients
equal TRL's fused head, and a default AlignStudio DPO run's losses follow a plain float32 TRL run's."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest
import torch

from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.training import cpu_fast
from alignstudio.training.data import load_training_data
from alignstudio.training.run_folder import RunFolder
from alignstudio.training.spec import RunSpec
from alignstudio.training.trainer_setup import load_model, lora_targets, make_config, make_trainer
from tests.tiny_model import build_tiny_model

PROMPTS = [
    "Name a fruit.",
    "What is two plus two?",
    "Say hello.",
    "Give me a colour.",
    "Count to three.",
    "What is the capital of France?",
    "Name an animal.",
    "Describe rain in one line.",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def write_pairs(path):
    rows = [
        {
            "prompt": [{"role": "user", "content": p}],
            "chosen": [{"role": "assistant", "content": f"A short, right answer to: {p}"}],
            "rejected": [{"role": "assistant", "content": "Something long and wrong " * (1 + i % 4)}],
        }
        for i, p in enumerate(PROMPTS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def pairs_file(tmp_path):
    return write_pairs(tmp_path / "pairs.jsonl")


def _patched(folder, compact: bool):
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    outputs = ("log_probs", "entropy", "mean_logits", "is_top1")
    add_fused_lm_head(model, outputs=outputs)
    if compact:
        assert cpu_fast.install(model, outputs)
    return model


@pytest.mark.parametrize("chunk", [None, 7])
def test_compact_head_matches_trls_fused_head(tiny, monkeypatch, chunk):
    if chunk:  # force the checkpointed chunks on a small batch
        monkeypatch.setattr(cpu_fast, "TOKEN_CHUNK", chunk)
    trl_model, ours = _patched(tiny, compact=False), _patched(tiny, compact=True)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (3, 12), generator=generator)
    labels = ids.clone()
    labels[:, :4] = -100  # prompt positions
    labels[2, 9:] = -100  # padding of a shorter row
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0
    results = []
    for model in (trl_model, ours):
        out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        (out.log_probs.sum() * 0.5).backward()
        results.append((out, model.model.layers[0].mlp.up_proj.weight.grad.clone()))
    (a, grad_a), (b, grad_b) = results
    valid = a.label_mask
    assert torch.equal(valid, b.label_mask)
    torch.testing.assert_close(b.log_probs[valid], a.log_probs[valid], atol=1e-4, rtol=1e-4)
    assert torch.all(b.log_probs[~valid] == 0)
    torch.testing.assert_close(b.entropy[valid], a.entropy[valid], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(b.mean_logits[valid], a.mean_logits[valid], atol=1e-4, rtol=1e-4)
    assert torch.equal(b.is_top1[valid], a.is_top1[valid])
    torch.testing.assert_close(b.loss, a.loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad_b, grad_a, atol=1e-5, rtol=1e-4)


def test_plain_forward_and_generation_are_untouched(tiny):
    trl_model, ours = _patched(tiny, compact=False), _patched(tiny, compact=True)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    torch.testing.assert_close(ours(input_ids=ids).logits, trl_model(input_ids=ids).logits)
    assert ours.generate(ids, max_new_tokens=3, do_sample=False).shape == (1, 8)


def _alignstudio_trainer(tmp_path, tiny, data, **overrides):
    spec = RunSpec(
        method="dpo",
        model=str(tiny),
        data=str(data),
        batch_size=2,
        max_steps=4,
        learning_rate=5e-3,
        save_steps=100,
        logging_steps=1,
        lora_dropout=0.0,
        **overrides,
    )
    workspace = Workspace.open(tmp_path / "ws")
    run = RunFolder.create(tmp_path / "run", spec)
    args = make_config(spec, run)
    loaded = load_model(spec, ModelRegistry(workspace, Store(workspace.db_path)))
    return spec, make_trainer(spec, args, loaded, load_training_data(spec.data, "dpo").dataset, [])


def test_default_bf16_run_follows_plain_fp32_trl(tmp_path, tiny, pairs_file):
    """Same data, order, LoRA and steps: the per-step losses of AlignStudio's default (bf16 autocast, bf16 base,
    precomputed reference, compact head, eager attention) stay within 0.02 of TRL's float32 defaults."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from alignstudio.core.models import load_tokenizer

    spec, ours = _alignstudio_trainer(tmp_path / "a", tiny, pairs_file, precision="bf16")
    assert ours.args.bf16 and ours.args.precompute_ref_log_probs and ours.args.precompute_ref_batch_size == 16
    base = ours.accelerator.unwrap_model(ours.model).get_base_model()
    assert base.config._attn_implementation == "eager"
    assert next(base.parameters()).dtype == torch.bfloat16
    lora = [p for n, p in ours.model.named_parameters() if "lora_" in n]
    assert lora and all(p.dtype == torch.float32 and p.requires_grad for p in lora)
    ours.train()

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    plain = DPOTrainer(
        model=model,
        processing_class=load_tokenizer(tiny),
        args=DPOConfig(
            output_dir=str(tmp_path / "plain"),
            per_device_train_batch_size=2,
            max_steps=4,
            learning_rate=spec.learning_rate,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=spec.seed,
            use_cpu=True,
            max_length=spec.max_length,
        ),
        train_dataset=load_training_data(str(pairs_file), "dpo").dataset,
        peft_config=LoraConfig(
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=0.0,
            bias="none",
            target_modules=lora_targets(model),
            task_type="CAUSAL_LM",
        ),
    )
    plain.train()
    losses = [[row["loss"] for row in t.state.log_history if "loss" in row] for t in (ours, plain)]
    assert len(losses[0]) == len(losses[1]) == 4
    assert losses[1][-1] < losses[1][0]  # the run learns, so the comparison means something
    for mine, theirs in zip(*losses):
        assert abs(mine - theirs) < 0.02, losses


def test_sdpa_is_kept_where_eager_attention_would_not_fit(tmp_path, tiny, pairs_file, monkeypatch):
    monkeypatch.setattr(cpu_fast, "EAGER_ATTENTION_BUDGET", 1024)
    _, trainer = _alignstudio_trainer(tmp_path, tiny, pairs_file, precision="bf16")
    base = trainer.accelerator.unwrap_model(trainer.model).get_base_model()
    assert base.config._attn_implementation == "sdpa"


def test_fp32_precision_keeps_the_plain_model(tmp_path, tiny, pairs_file):
    _, trainer = _alignstudio_trainer(tmp_path, tiny, pairs_file, precision="fp32")
    base = trainer.accelerator.unwrap_model(trainer.model).get_base_model()
    assert not trainer.args.bf16 and next(base.parameters()).dtype == torch.float32
    assert base.config._attn_implementation == "sdpa"


def test_longest_example_reads_the_tokenized_columns():
    from datasets import Dataset

    data = Dataset.from_dict(
        {"prompt_ids": [[1, 2], [1, 2, 3]], "chosen_ids": [[4], [5, 6, 7, 8]], "rejected_ids": [[9, 9, 9], [1]]}
    )
    assert cpu_fast.longest_example(data) == 7


FREED_BLOCKS = r"""
import ctypes, sys
import torch
from alignstudio.training import cpu_fast

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "keep":
    assert cpu_fast.keep_freed_memory()
blocks = [torch.empty(4 << 20) for _ in range(4)]  # 16 MB each, as a step's activations
del blocks
print(libc.mallinfo2().fordblks >> 20)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_training_process_keeps_freed_blocks_for_the_next_step():
    """After keep_freed_memory, a step's freed tensors stay in the heap (free for the next step's, no page
    faults) instead of going back to the OS, as they do by default."""

    def free_mb(mode):
        done = subprocess.run([sys.executable, "-c", FREED_BLOCKS, mode], capture_output=True, text=True, check=True)
        return int(done.stdout.split()[-1])

    assert free_mb("keep") >= 64
    assert free_mb("default") < 64
