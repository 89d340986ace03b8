"""A tiny random Llama with the real SmolLM2 tokenizer, so tests run in seconds on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Write a 2-layer, 64-wide Llama (same tokenizer and chat template as SmolLM2) into `folder`."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from alignstudio.core.models import embedded_gguf

    folder = Path(folder)
    if (folder / "config.json").exists():
        return folder
    gguf = embedded_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
