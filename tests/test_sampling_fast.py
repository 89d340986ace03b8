"""The fast sampling path (lean decode loop, bf16 packed weights) gives what the plain path gives.

Fast tests use the tiny random model: the nucleus is exactly transformers' top-p, the lean loop decodes the
same tokens as `generate` (greedy, padded batches, end tokens), seeded runs repeat, and the app's default
loading path (GeneratorPool) packs bf16 layers without changing their outputs. Real-model tests check
bf16 against float32 on SmolLM2: greedy tokens agree at first, and the next-token distributions are close.
No timings are asserted here (bench/ measures them).
"""

import pytest
import torch
from transformers import TopPLogitsWarper

from alignstudio.core.models import load_causal_lm, load_tokenizer
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.services.sampling.decoding import decode, lean_decoding_supported, nucleus, sample_nucleus
from alignstudio.services.sampling.generators import (
    DTYPE_ENV,
    GeneratorPool,
    PackedLinear,
    cpu_has_fast_bf16,
    prepare_for_sampling,
    sampling_dtype,
)
from alignstudio.services.sampling.sampler import Generator, sample_pair, sample_pairs
from alignstudio.services.sampling.settings import SamplingSettings

MSG = [{"role": "user", "content": "Give me one tip for better sleep."}]
LONGER = [{"role": "user", "content": "Explain in two sentences why the sky looks blue during the day."}]
needs_bf16 = pytest.mark.skipif(not cpu_has_fast_bf16(), reason="this CPU has no fast bf16 (oneDNN)")


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    tok.padding_side = "left"
    return tok


@pytest.fixture(scope="module")
def fp32_model(tiny_model_dir):
    return load_causal_lm(tiny_model_dir)


def _hf_top_p_probs(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    return torch.softmax(TopPLogitsWarper(top_p)(None, logits.clone()), dim=-1)


def _ours(logits: torch.Tensor, top_p: float, search: int) -> torch.Tensor:
    ids, weights = nucleus(logits, top_p, search=search)
    dense = torch.zeros_like(logits).scatter_(1, ids, weights)
    return dense / dense.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize("top_p", [1e-9, 0.5, 0.9, 0.95, 1.0])
@pytest.mark.parametrize("scale", [0.3, 3.0, 12.0])  # flat (wide nucleus) to peaked (a few tokens)
@pytest.mark.parametrize("search", [8, 1024])  # 8 forces the full-sort fallback on most rows
def test_nucleus_is_transformers_top_p(top_p, scale, search):
    generator = torch.Generator().manual_seed(int(scale * 10) + search)
    logits = torch.randn(4, 3000, generator=generator) * scale
    expected, got = _hf_top_p_probs(logits, top_p), _ours(logits, top_p, search)
    assert torch.equal(expected > 0, got > 0)  # the same tokens are in the nucleus
    assert torch.allclose(expected, got, atol=1e-6)


@pytest.mark.parametrize("same_draws_as_generate", [False, True])
def test_draws_follow_the_top_p_distribution(same_draws_as_generate):
    """Both ways of drawing (candidates only, the unseeded default; whole vocabulary, seeded) land on each
    token as often as transformers' top-p probabilities say."""
    logits = torch.randn(1, 40, generator=torch.Generator().manual_seed(0)) * 2
    expected = _hf_top_p_probs(logits, 0.8)[0]
    rows = 20000
    tokens = sample_nucleus(
        logits.expand(rows, -1).contiguous(), 0.8, torch.Generator().manual_seed(1), same_draws_as_generate
    )
    observed = torch.bincount(tokens, minlength=40).float() / rows
    assert float((observed - expected).abs().max()) < 0.015
    assert float(observed[expected == 0].sum()) == 0.0  # nothing outside the nucleus, ever


def _hf_greedy(model, tokenizer, conversations, n, **kw):
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**batch, do_sample=False, max_new_tokens=n, pad_token_id=tokenizer.pad_token_id, **kw)
    return batch, out[:, batch["input_ids"].shape[1] :]


def test_lean_loop_decodes_what_generate_decodes_on_a_padded_batch(fp32_model, tokenizer):
    """Greedy (a nucleus of one token) through the lean loop = greedy `generate`, row by row, with left
    padding (the two prompts differ in length), positions and the KV cache all in play."""
    batch, expected = _hf_greedy(fp32_model, tokenizer, [MSG, LONGER], 12, min_new_tokens=12)
    assert batch["attention_mask"].min() == 0  # really padded
    got = decode(
        fp32_model,
        batch["input_ids"],
        batch["attention_mask"],
        torch.tensor([0.7, 1.0]),
        top_p=1e-9,
        max_new_tokens=12,
        min_new_tokens=12,
        eos_token_ids=[tokenizer.eos_token_id],
        pad_token_id=tokenizer.pad_token_id,
    )
    assert torch.equal(got, expected)


def test_lean_loop_stops_rows_at_their_end_token_like_generate(fp32_model, tokenizer):
    _, free = _hf_greedy(fp32_model, tokenizer, [MSG, LONGER], 10)
    row = free[0].tolist()
    at = next((i for i in range(1, len(row)) if row[i] not in row[:i]), 0)
    stop = row[at]  # pretend this greedy token of row 0 is the end token
    batch, expected = _hf_greedy(fp32_model, tokenizer, [MSG, LONGER], 10, eos_token_id=stop)
    got = decode(
        fp32_model,
        batch["input_ids"],
        batch["attention_mask"],
        torch.tensor([1.0, 1.0]),
        top_p=1e-9,
        max_new_tokens=10,
        eos_token_ids=[stop],
        pad_token_id=tokenizer.pad_token_id,
    )
    assert torch.equal(got, expected[:, : got.shape[1]])
    assert int(got[0, at]) == stop and (got[0, at + 1 :] == tokenizer.pad_token_id).all()


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_seeded_samples_are_the_same_tokens_as_generate(fp32_model, tokenizer, seed):
    """Same seed, same model: the lean loop draws exactly what `generate` draws (sampling, not greedy)."""
    lean, plain = Generator("lean", fp32_model, tokenizer), Generator("plain", fp32_model, tokenizer, lean=False)
    assert lean.lean and not plain.lean
    args = dict(top_p=0.9, max_new_tokens=16, seed=seed)
    assert lean.complete([MSG, LONGER], [0.7, 1.0], **args) == plain.complete([MSG, LONGER], [0.7, 1.0], **args)


def test_min_new_tokens_holds_back_the_end_token(fp32_model, tokenizer):
    _, free = _hf_greedy(fp32_model, tokenizer, [MSG], 6)
    stop = int(free[0, 1])
    text = tokenizer.apply_chat_template(MSG, tokenize=False, add_generation_prompt=True)
    batch = tokenizer([text], return_tensors="pt", add_special_tokens=False)
    got = decode(
        fp32_model,
        batch["input_ids"],
        batch["attention_mask"],
        torch.tensor([1.0]),
        top_p=1e-9,
        max_new_tokens=8,
        min_new_tokens=8,
        eos_token_ids=[stop],
        pad_token_id=tokenizer.pad_token_id,
    )
    assert got.shape == (1, 8) and stop not in got[0].tolist()


def test_fast_path_is_the_default_and_seeded_runs_repeat(fp32_model, tokenizer):
    generator = Generator("tiny", fp32_model, tokenizer)
    assert generator.lean and lean_decoding_supported(fp32_model)
    settings = SamplingSettings(max_new_tokens=16, seed=5)
    first, again = sample_pair(MSG, settings, generator), sample_pair(MSG, settings, generator)
    assert (first.text_a, first.text_b) == (again.text_a, again.text_b)
    other = sample_pair(MSG, SamplingSettings(max_new_tokens=16, seed=6), generator)
    assert (other.text_a, other.text_b) != (first.text_a, first.text_b)
    assert first.text_a and first.text_b and first.params_a["seed"] == 5


def test_models_asking_for_extra_logits_processing_use_generate(tiny_model_dir, tokenizer):
    model = load_causal_lm(tiny_model_dir)
    model.generation_config.repetition_penalty = 1.3
    assert not lean_decoding_supported(model)
    generator = Generator("penalized", model, tokenizer)
    assert not generator.lean
    (text,) = generator.complete([MSG], [0.7], top_p=0.95, max_new_tokens=8, seed=0)
    assert isinstance(text, str)


def test_dtype_choice(monkeypatch):
    monkeypatch.setenv(DTYPE_ENV, "float32")
    assert sampling_dtype() == torch.float32
    assert sampling_dtype(torch.bfloat16) == torch.bfloat16
    monkeypatch.setenv(DTYPE_ENV, "auto")
    assert sampling_dtype() == (torch.bfloat16 if cpu_has_fast_bf16() else torch.float32)
    monkeypatch.setenv(DTYPE_ENV, "int3")
    with pytest.raises(Exception, match="ALIGNSTUDIO_SAMPLER_DTYPE"):
        sampling_dtype()


@needs_bf16
def test_packed_layers_compute_what_plain_bf16_layers_compute(tiny_model_dir, tokenizer):
    plain = load_causal_lm(tiny_model_dir, dtype="bfloat16")
    packed = prepare_for_sampling(load_causal_lm(tiny_model_dir, dtype=torch.bfloat16), torch.bfloat16)
    assert any(isinstance(m, PackedLinear) for m in packed.modules())
    assert not any(type(m) is torch.nn.Linear for m in packed.modules())
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in (MSG, LONGER)]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        a, b = plain(**batch).logits.float(), packed(**batch).logits.float()
    assert torch.allclose(a, b, atol=1e-2, rtol=1e-2)
    # and the same tokens through the whole fast path, seeded
    gen_plain, gen_packed = Generator("plain", plain, tokenizer), Generator("packed", packed, tokenizer)
    args = dict(top_p=0.95, max_new_tokens=12, seed=3)
    assert gen_plain.complete([MSG, MSG], [0.7, 1.0], **args) == gen_packed.complete([MSG, MSG], [0.7, 1.0], **args)


def test_the_app_pool_builds_the_fast_path_by_default(workspace, tiny_model_dir, monkeypatch):
    monkeypatch.delenv(DTYPE_ENV, raising=False)
    pool = GeneratorPool(ModelRegistry(workspace, Store(workspace.db_path)))
    generator = pool.get(str(tiny_model_dir))
    assert generator.lean
    packed = any(isinstance(m, PackedLinear) for m in generator.model.modules())
    assert packed == cpu_has_fast_bf16()
    assert generator.model.dtype == (torch.bfloat16 if cpu_has_fast_bf16() else torch.float32)
    pair = sample_pair(MSG, SamplingSettings(max_new_tokens=16, seed=2), generator)
    assert pair is not None and pair.text_a and pair.text_b and pair.text_a != pair.text_b
    monkeypatch.setenv(DTYPE_ENV, "float32")
    plain = GeneratorPool(ModelRegistry(workspace, Store(workspace.db_path))).get(str(tiny_model_dir))
    assert plain.model.dtype == torch.float32
    assert not any(isinstance(m, PackedLinear) for m in plain.model.modules())


# -- the real SmolLM2: bf16 against float32 ---------------------------------------------------------------------

PROMPTS = ["What is the capital of France?", "Give me three tips for better sleep.", "Write a haiku about autumn."]


@pytest.fixture(scope="module")
def real_pair(real_workspace):
    from alignstudio.core.models import ensure_embedded

    folder = ensure_embedded(real_workspace.models_dir)
    tokenizer = load_tokenizer(folder)
    tokenizer.padding_side = "left"
    fast = GeneratorPool(ModelRegistry(real_workspace, Store(real_workspace.db_path)), dtype="auto").get("smollm2")
    return load_causal_lm(folder), fast, tokenizer


@pytest.mark.real_model
def test_real_greedy_tokens_agree_with_float32_at_first(real_pair):
    reference, fast, tokenizer = real_pair
    for prompt in PROMPTS:
        messages = [{"role": "user", "content": prompt}]
        batch, expected = _hf_greedy(reference, tokenizer, [messages], 8, min_new_tokens=8)
        got = decode(
            fast.model,
            batch["input_ids"],
            batch["attention_mask"],
            torch.tensor([1.0]),
            top_p=1e-9,
            max_new_tokens=8,
            min_new_tokens=8,
            eos_token_ids=fast.eos_token_ids,
            pad_token_id=fast.pad_token_id,
        )
        assert got[0].tolist() == expected[0].tolist(), prompt


@pytest.mark.real_model
def test_real_sampled_text_has_the_same_distribution_as_float32(real_pair):
    """Teacher-forced on text the fast sampler wrote: the fast model's next-token distributions are within
    a small KL of float32's, and the text's mean log-probability is the same under both."""
    reference, fast, tokenizer = real_pair
    for seed, prompt in enumerate(PROMPTS):
        messages = [{"role": "user", "content": prompt}]
        (text,) = fast.complete([messages], [1.0], top_p=0.95, max_new_tokens=48, seed=seed)
        assert text
        prefix = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(prefix + text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            p = torch.log_softmax(reference(input_ids=ids).logits[0].float(), dim=-1)
            q = torch.log_softmax(fast.model(input_ids=ids).logits[0].float(), dim=-1)
        kl = (p.exp() * (p - q)).sum(-1)
        assert float(kl.mean()) < 0.01 and float(kl.max()) < 0.1, (prompt, float(kl.mean()), float(kl.max()))
        target = ids[0, 1:].unsqueeze(1)
        lp_ref, lp_fast = p[:-1].gather(1, target).mean(), q[:-1].gather(1, target).mean()
        assert abs(float(lp_ref - lp_fast)) < 0.05


@pytest.mark.real_model
def test_real_fast_sampler_answers_sensibly_and_repeats_with_a_seed(real_pair):
    _, fast, _ = real_pair
    settings = SamplingSettings(temperature_a=0.05, max_new_tokens=40, seed=0)
    pair = sample_pair([{"role": "user", "content": PROMPTS[0]}], settings, fast)
    again = sample_pair([{"role": "user", "content": PROMPTS[0]}], settings, fast)
    assert pair is not None and (pair.text_a, pair.text_b) == (again.text_a, again.text_b)
    # one draw may open with "L'Étoile..." (14% at temperature 1): of four pairs with A near greedy, one names Paris
    pairs = sample_pairs([[{"role": "user", "content": PROMPTS[0]}]] * 4, settings, fast)
    assert any(p is not None and "Paris" in p.text_a + p.text_b for p in pairs)
