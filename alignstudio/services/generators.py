"""Loaded models, shared by every tab: each model version is loaded once and reused.

Owns the choice of dtype for sampling and the cache; loading itself is the registry's job.
"""

from __future__ import annotations

import threading

import torch

from ..core.registry import ModelRegistry
from .sampling import Generator


class GeneratorPool:
    def __init__(self, registry: ModelRegistry, dtype: torch.dtype = torch.float32):
        self.registry = registry
        self.dtype = dtype
        self._cache: dict[str, Generator] = {}
        self._lock = threading.Lock()

    def get(self, name_or_path: str) -> Generator:
        ref = self.registry.resolve(name_or_path)
        with self._lock:
            generator = self._cache.get(ref.name)
            if generator is None:
                model, tokenizer = self.registry.load(ref, dtype=self.dtype)
                generator = Generator(ref.name, model, tokenizer)
                self._cache[ref.name] = generator
            return generator

    def loaded(self) -> list[str]:
        return list(self._cache)
