"""Reference log-probs kept in the workspace, so a run on rows the reference has already scored skips its pass.

With LoRA on a CPU the reference pass is a third of a DPO run's work (docs/performance.md). TRL caches it
beside the dataset's files, but its key hashes the whole training config (output folder and beta included)
and an in-memory set's cache is deleted at exit, so every run paid it again: a beta sweep of 4 paid it 4
times for the same rows, and a resumed run once more. Here the key is what decides the values: TRL's hash
of the model's weights (the worker seeds the LoRA init, so same base + seed = same hash) and the tokenized
rows themselves (so max length, truncation and the chat template are in it), per set (train / eval).
A change of model, rows or length misses; nothing stale is reused. TRL's DPO and KTO trainers are covered (IPO
is DPO with another loss); the hook is their `_precompute_ref_logps`, whose added columns are kept as TRL makes
them (DPO: chosen / rejected; KTO: the completion's and, where KTO estimates its KL term, the mismatched
completion's, whose pairing is itself a column of the rows, so it is in the key).
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def ref_cache_dir(workspace_root: str | Path) -> Path:
    return Path(workspace_root) / "cache" / "reference-logps"


def _key(trainer, kind: str, dataset, name: str) -> str:
    from datasets.fingerprint import Hasher

    kind = (kind, getattr(trainer, "calculate_KL", None))  # DPO, or KTO with or without its KL term
    return Hasher.hash((trainer._precompute_model_hash, kind, name, dataset.column_names, dataset[:]))


def cached_trainer(trainer_class, folder: Path):
    """TRL's DPOTrainer or KTOTrainer (`trainer_class`) whose reference pass is read from / written to `folder`."""
    from datasets import Dataset, concatenate_datasets
    from safetensors.torch import load_file, save_file

    class CachedReference(trainer_class):
        def _precompute_ref_logps(self, dataset, name, batch_size):
            path = Path(folder) / f"{_key(self, trainer_class.__name__, dataset, name)}.safetensors"
            if path.exists():
                kept = load_file(str(path))
                print(f"reference log-probs for the {name} set: reused ({path.name})", flush=True)
                return concatenate_datasets([dataset, Dataset.from_dict(kept)], axis=1)
            started = time.time()
            scored = super()._precompute_ref_logps(dataset, name, batch_size)
            print(f"reference log-probs for the {name} set: computed in {time.time() - started:.1f} s", flush=True)
            if self.accelerator.is_main_process:
                import torch

                added = [c for c in scored.column_names if c not in dataset.column_names]
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".partial-{os.getpid()}")
                save_file({c: torch.tensor(scored[c]) for c in added}, str(partial))
                os.replace(partial, path)  # whole or absent
            return scored

    CachedReference.__name__ = f"CachedReference{trainer_class.__name__}"
    return CachedReference
