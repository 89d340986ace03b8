"""Packed rows (training/packing.py) give the padded batch's log-probs, metrics and gradients, with each DPO
pair's common prefix computed once and no padding computed."""

from __future__ import annotations

import pytest
import torch

from alignstudio.training import cpu_fast, packing
from tests.tiny_model import build_tiny_model

OUTPUTS = ("log_probs", "entropy", "mean_logits", "is_top1")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _model(folder, attention: str, pack: bool):
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation=attention)
    add_fused_lm_head(model, outputs=OUTPUTS)
    assert cpu_fast.install(model, OUTPUTS, pack=pack)
    return model


def dpo_batch(prompts=(5, 3, 8), chosen=(4, 9, 2), rejected=(7, 3, 6), seed=0, system=0):
    """TRL's DPO layout: [prompt + chosen rows; prompt + rejected rows], right-padded, labels on completions.
    `system`: that many first prompt tokens are the same in every row (a chat template's system prompt)."""
    generator = torch.Generator().manual_seed(seed)
    rows, labels = [], []
    parts = [(p, c) for p, c in zip(prompts, chosen)] + [(p, r) for p, r in zip(prompts, rejected)]
    prompt_ids = [torch.randint(10, 1000, (p,), generator=generator) for p in prompts]
    common = torch.randint(10, 1000, (system,), generator=generator)
    prompt_ids = [torch.cat([common, ids[system:]]) for ids in prompt_ids]
    for i, (p, n) in enumerate(parts):
        completion = torch.randint(10, 1000, (n,), generator=generator)
        rows.append(torch.cat([prompt_ids[i % len(prompts)], completion]))
        labels.append(torch.cat([torch.full((p,), -100), completion]))
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    label = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, labels)):
        ids[i, : len(r)], label[i, : len(r)], mask[i, : len(r)] = r, lab, 1
    return ids, mask, label


def test_a_pair_is_one_segment_sharing_its_prompt():
    ids, mask, _ = dpo_batch(prompts=(5,), chosen=(4,), rejected=(7,))
    ids[1, 5] = ids[0, 5] + 1  # the completions differ from their first token
    packed = packing.pack(ids, mask, pad_id=0)
    assert packed.input_ids.shape == (1, 9 + 12 - 5)
    assert packed.position_ids[0].tolist() == list(range(9)) + list(range(5, 12))
    assert torch.equal(packed.index[1, :5], packed.index[0, :5])  # the rejected row reads the chosen prompt
    allowed = packed.allowed[0, 0]
    assert allowed[9, :5].all() and not allowed[9, 5:9].any() and allowed[9, 9]  # prompt yes, chosen tail no
    assert not allowed[:9, 9:].any()


def test_segments_pack_into_rows_without_padding_between_them():
    ids, mask, _ = dpo_batch()
    packed = packing.pack(ids, mask, pad_id=0)
    real = int(mask.sum())
    shared = sum(int(packed.index[i, 0] == packed.index[i + 3, 0]) * p for i, p in enumerate((5, 3, 8)))
    assert int((packed.index.unique() >= 0).sum()) == real - shared  # every distinct position computed once
    assert packed.input_ids.numel() < ids.numel()


def test_a_prefix_common_to_every_row_is_computed_once_outside_the_rows():
    ids, mask, _ = dpo_batch(prompts=(12, 10, 15), system=9)
    packed = packing.pack(ids, mask, pad_id=0)
    assert packed.prefix.tolist() == ids[0, :9].tolist()
    rows, width = packed.input_ids.shape
    assert (packed.index[:, :9] == rows * width + torch.arange(9)).all()  # every row reads the prefix's outputs
    assert int((packed.index.unique() >= 0).sum()) == 9 + int(mask.sum()) - 6 * 9 - (3 + 1 + 6)
    assert packed.allowed.shape == (rows, 1, width, 9 + width) and packed.allowed[..., :9].all()
    assert packed.position_ids[packed.input_ids != 0].min() == 9  # the rows' own tokens start after it
    for unshared in (
        packing.pack(ids, mask, pad_id=0, share_prefix=False),  # e.g. under checkpointing
        packing.pack(*dpo_batch(prompts=(12, 10, 15), system=3)[:2], pad_id=0),
    ):  # too short to pay
        assert unshared.prefix is None and unshared.allowed.shape[-1] == unshared.input_ids.shape[1]


def test_segments_are_dealt_into_the_rows_that_compute_the_fewest_wasted_positions():
    def loads(sizes):
        return sorted(sum(sizes[s] for s in row) for row in packing._rows(sizes))

    assert loads([250, 200, 150, 100]) == [350, 350]  # 700 positions; rows of up to 256 computed 3 x 250
    assert loads([300, 20, 20, 20]) == [360]  # a second row would be 300 wide for 60 tokens
    assert loads([100] * 8) == [100] * 8  # no count wastes a position: the narrowest rows, the least attention
    assert sorted(s for row in packing._rows([5, 9, 1, 7]) for s in row) == [0, 1, 2, 3]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("rows", ["pairs", "completions-start-alike", "odd", "system-prompt", "odd-system-prompt"])
def test_packed_forward_equals_the_padded_batch(tiny, attention, rows):
    ids, mask, labels = dpo_batch(prompts=(12, 10, 15), system=9) if "system" in rows else dpo_batch()
    if rows == "completions-start-alike":  # the pair shares its prompt and 2 completion tokens
        ids[3, 5:7] = labels[3, 5:7] = ids[0, 5:7]
    if rows.startswith("odd"):  # not pairs (a KTO-like batch): rows are packed without sharing
        ids, mask, labels = ids[:5], mask[:5], labels[:5]
    results, widths = [], []
    for pack in (False, True):
        model = _model(tiny, attention, pack)
        model.model.register_forward_pre_hook(lambda m, a, kw: widths.append(kw["input_ids"].numel()), with_kwargs=True)
        out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        (out.log_probs.sum() * 0.5).backward()
        results.append(
            (
                out,
                model.model.layers[0].self_attn.q_proj.weight.grad.clone(),
                model.model.embed_tokens.weight.grad.clone(),
            )
        )
    (a, attn_a, embed_a), (b, attn_b, embed_b) = results
    assert widths[0] == ids.numel() and widths[1] < ids.numel()  # the second ran packed
    valid = a.label_mask
    assert torch.equal(valid, b.label_mask)
    torch.testing.assert_close(b.log_probs, a.log_probs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.entropy[valid], a.entropy[valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(b.mean_logits[valid], a.mean_logits[valid], atol=1e-5, rtol=1e-5)
    assert torch.equal(b.is_top1[valid], a.is_top1[valid])
    torch.testing.assert_close(b.loss, a.loss)
    torch.testing.assert_close(attn_b, attn_a, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(embed_b, embed_a, atol=1e-5, rtol=1e-4)


def test_a_left_padded_batch_is_left_as_it_is(tiny):
    ids, mask, labels = dpo_batch()
    ids, mask, labels = ids.flip(1), mask.flip(1), labels.flip(1)
    assert packing.pack(ids, mask, pad_id=0) is None
    padded, packed = (
        _model(tiny, "sdpa", pack)(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        for pack in (False, True)
    )
    torch.testing.assert_close(packed.log_probs, padded.log_probs)


def test_a_training_run_packs_and_learns_as_the_padded_run(tmp_path, tiny, monkeypatch):
    """The worker's DPO trainer (float32, precomputed reference) runs packed, and its per-step losses are the
    padded run's."""
    from tests.test_training_cpu_fast import _alignstudio_trainer, write_pairs

    data = write_pairs(tmp_path / "pairs.jsonl")
    losses, packed_calls = [], []
    for pack in (True, False):
        if not pack:
            monkeypatch.setattr(packing, "PACKABLE", frozenset())
        _, trainer = _alignstudio_trainer(tmp_path / str(pack), tiny, data, precision="fp32")
        base = trainer.accelerator.unwrap_model(trainer.model).get_base_model()
        base.model.register_forward_pre_hook(  # packed rows come with position ids, the shared prefix alone
            lambda m, a, kw, pack=pack: packed_calls.append(  # (the chat template's system prompt) with a cache to fill
                (pack, "rows" if kw.get("position_ids") is not None else "prefix" if kw.get("use_cache") else "padded")
            ),
            with_kwargs=True,
        )
        trainer.train()
        losses.append([row["loss"] for row in trainer.state.log_history if "loss" in row])
    assert set(packed_calls) == {(True, "rows"), (True, "prefix"), (False, "padded")}
    assert len(losses[0]) == 4 and losses[0][-1] < losses[0][0]
    for packed_loss, padded_loss in zip(*losses):
        assert abs(packed_loss - padded_loss) < 1e-4, losses
