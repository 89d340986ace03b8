"""Folding a LoRA adapter into its base: a full safetensors checkpoint that any tool loads (vLLM, llama.cpp
converters, plain transformers), registered as a model version of kind "full".

Uses PEFT's `merge_and_unload`; writes to a temporary folder renamed into place, so a crash leaves nothing
half-written. Knows the registry and the store, not the UI.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..core import access
from ..core import models as core_models
from ..core.errors import UserError
from ..core.formats import new_folder
from ..core.registry import ModelRegistry


@dataclass(frozen=True)
class MergeResult:
    name: str
    folder: Path
    base: str


def merge_adapter(
    registry: ModelRegistry, model: str, out: str | Path | None = None, name: str | None = None, dtype: str = "float32"
) -> MergeResult:
    """Merge adapter `model` (a version name, run folder or adapter folder) into a full checkpoint.

    `out` defaults to workspace/models/<name>; `name` (the registered version) defaults to '<adapter>-merged'.
    """
    access.require_admin("merging a model")
    ref = registry.resolve(model)
    if not ref.is_adapter:
        raise UserError(f"{model} is already a full checkpoint; only LoRA adapters can be merged")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise UserError(f"dtype must be float32, bfloat16 or float16, not {dtype!r}")
    short = Path(ref.name).name if os.sep in ref.name else ref.name
    if short == "model":  # a run folder's model/: name it after the run
        short = Path(ref.folder).parent.name
    name = name or f"{short}-merged"
    if any(v["name"] == name for v in registry.store.model_versions()):
        raise UserError(f"a model version named {name!r} already exists; pass another name")
    target = Path(out) if out else registry.workspace.models_dir / name
    target = target.expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise UserError(f"{target} already exists and is not empty")

    with new_folder(target) as tmp:
        write_merged(ref, tmp, dtype)
    base = base_name(registry, ref.base_folder)
    run_dir = ref.folder.parent if (ref.folder.parent / "status.json").is_file() else None
    registry.store.register_model(name, target, kind="full", base=base, run_dir=run_dir)
    return MergeResult(name, target, base)


def write_merged(ref, folder: Path, dtype: str = "float32") -> Path:
    """The adapter `ref` merged into its base, saved (weights, tokenizer, chat template, merge_info.json and,
    for a run's adapter, the model card) into a fresh `folder`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from .model_card import render

    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise UserError(f"dtype must be float32, bfloat16 or float16, not {dtype!r}")
    base = AutoModelForCausalLM.from_pretrained(
        core_models.check_model_folder(ref.base_folder),
        dtype=torch_dtype,
        use_safetensors=True,
        trust_remote_code=False,
    )
    merged = PeftModel.from_pretrained(base, ref.folder).merge_and_unload()
    tokenizer_folder = ref.folder if (ref.folder / "tokenizer_config.json").exists() else ref.base_folder
    tokenizer = core_models.load_tokenizer(tokenizer_folder)
    merged.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "merge_info.json").write_text(
        json.dumps(
            {
                "adapter": str(ref.folder),
                "adapter_name": ref.name,
                "base_folder": str(ref.base_folder),
                "base": core_models.portable_name(ref.base_folder),
                "dtype": dtype,
            },
            indent=2,
        )
    )
    card_path = ref.folder.parent / "card.json"
    if card_path.is_file():
        (folder / "README.md").write_text(render(json.loads(card_path.read_text()), adapter=False), encoding="utf-8")
    return folder


def base_name(registry: ModelRegistry, folder: Path) -> str:
    """The registry name of a base checkpoint folder (the embedded model, a version, or the path itself)."""
    folder = Path(folder).resolve()
    if folder == (registry.workspace.models_dir / core_models.EMBEDDED_NAME).resolve():
        return core_models.EMBEDDED_NAME
    for version in registry.store.model_versions():
        if Path(version["path"]).resolve() == folder:
            return version["name"]
    return str(folder)
