"""Reference log-probs kept in the workspace, so a run on rows the reference has already scored skips its pass.

With LoRA on a CPU the reference pass is a third of a DPO run's work (docs/performance.md). TRL caches it
beside the dataset's files, but its key hashes the whole training config (output folder and beta included)
and an in-memory set's cache is deleted at exit, so every run paid it again: a beta sweep of 4 paid it 4
times for the same rows, and a resumed run once more. Here the key is what decides the values: TRL's hash
of the model's weights (the worker seeds the LoRA init, so same base + seed = same hash) and the tokenized
rows themselves (so max length, truncation and the chat template are in it), per set (train / eval).
A change of model, rows or length misses; nothing stale is reused. Only TRL's DPO trainer is covered (IPO
is DPO with another loss); the hook is its `_precompute_ref_logps`, whose return value is kept as TRL makes it.
"""

from __future__ import annotations

import os
from pathlib import Path

COLUMNS = ("ref_chosen_logps", "ref_rejected_logps")


def ref_cache_dir(workspace_root: str | Path) -> Path:
    return Path(workspace_root) / "cache" / "reference-logps"


def _key(model_hash: str, dataset, name: str) -> str:
    from datasets.fingerprint import Hasher

    return Hasher.hash((model_hash, name, dataset.column_names, dataset[:]))


def cached_dpo_trainer(folder: Path):
    """TRL's DPOTrainer whose reference pass is read from / written to `folder`."""
    from datasets import Dataset, concatenate_datasets
    from safetensors.torch import load_file, save_file
    from trl import DPOTrainer

    class CachedReferenceDPOTrainer(DPOTrainer):
        def _precompute_ref_logps(self, dataset, name, batch_size):
            path = Path(folder) / f"{_key(self._precompute_model_hash, dataset, name)}.safetensors"
            if path.exists():
                kept = load_file(str(path))
                print(f"reference log-probs for the {name} set: reused ({path.name})", flush=True)
                return concatenate_datasets([dataset, Dataset.from_dict({c: kept[c] for c in COLUMNS})], axis=1)
            scored = super()._precompute_ref_logps(dataset, name, batch_size)
            if self.accelerator.is_main_process:
                import torch

                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".partial-{os.getpid()}")
                save_file({c: torch.tensor(scored[c]) for c in COLUMNS}, str(partial))
                os.replace(partial, path)  # whole or absent
            return scored

    return CachedReferenceDPOTrainer
