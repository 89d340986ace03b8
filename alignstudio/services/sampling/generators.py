"""Loaded models, shared by every tab: each model version is loaded once and reused.

Owns the choice of dtype for sampling, the CPU weight packing and the cache; loading itself is the
registry's job. On a CPU with native bfloat16 (AVX512-BF16/AMX, checked by oneDNN) a sampling model is
loaded in bfloat16 and its linear layers are repacked once into oneDNN's blocked layout, so each decoding
step reads half the bytes of float32 and skips the per-call weight reorder that plain `F.linear` pays
(docs/performance.md has the measurements). Elsewhere, or with `ALIGNSTUDIO_SAMPLER_DTYPE=float32`, models
stay float32 and unpacked. Training never goes through this pool.

Remote names (`openai:MODEL`, `anthropic:MODEL`, `ENDPOINT:MODEL`: remote_names.py) resolve to remote
generators, cached by name like local models; they load nothing.
"""

from __future__ import annotations

import logging
import os
import threading

import torch
from torch import nn

from ...core.cpu_share import CpuShare
from ...core.errors import UserError
from ...core.models import cpu_has_fast_bf16
from ...core.registry import ModelRegistry
from . import remote_names
from .sampler import Generator

log = logging.getLogger(__name__)
DTYPE_ENV = "ALIGNSTUDIO_SAMPLER_DTYPE"
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def sampling_dtype(requested: str | torch.dtype | None = None) -> torch.dtype:
    """The dtype sampling models load in: an explicit dtype, else $ALIGNSTUDIO_SAMPLER_DTYPE, else "auto"
    (bfloat16 where the CPU has fast bf16, float32 otherwise)."""
    if isinstance(requested, torch.dtype):
        return requested
    name = (requested or os.environ.get(DTYPE_ENV) or "auto").strip().lower()
    if name == "auto":
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if name not in _DTYPES:
        raise UserError(f"{DTYPE_ENV} must be auto, float32 or bfloat16, not {name!r}")
    return _DTYPES[name]


class PackedLinear(nn.Module):
    """A bfloat16 `nn.Linear` for inference, with its weight reordered once into oneDNN's packed layout.

    Same arithmetic as `F.linear` on the bf16 weight (oneDNN computes both; outputs are bit-identical in
    the check `pack_linear_layers` runs), without re-laying the weight out on every call. No autograd.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, 2)  # not a parameter: not in state_dict
        self.bias = None if linear.bias is None else linear.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.bfloat16:
            x = x.to(torch.bfloat16)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, packed=oneDNN"


def _packing_works() -> bool:
    """Packed and plain bf16 linears agree on this machine (they are the same oneDNN arithmetic)."""
    try:
        generator = torch.Generator().manual_seed(0)
        linear = nn.Linear(64, 48, bias=True).to(torch.bfloat16)
        x = torch.randn(3, 2, 64, generator=generator).to(torch.bfloat16)
        with torch.inference_mode():
            expected = linear(x).float()
            got = PackedLinear(linear)(x).float()
        return torch.allclose(expected, got, atol=1e-2, rtol=1e-2)
    except Exception:  # noqa: BLE001 - any failure of the private op means: do not pack
        return False


def pack_linear_layers(model: nn.Module) -> int:
    """Swap every bfloat16 CPU `nn.Linear` of an inference model for a `PackedLinear`; returns how many.

    The swapped layers' weights are freed unless something else holds them (a tied lm_head keeps the
    embedding's). Nothing is swapped where oneDNN cannot pack, or where the check fails.
    """
    names = [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear and module.weight.dtype == torch.bfloat16 and module.weight.device.type == "cpu"
    ]
    if not names or not _packing_works():
        return 0
    for name in names:  # one at a time, so each old weight can go as soon as its layer is swapped
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, PackedLinear(getattr(parent, child)))
    _return_freed_memory()
    return len(names)


def _return_freed_memory() -> None:
    """Hand the freed unpacked weights back to the OS (glibc keeps freed heap otherwise: ~200 MB of RSS)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def prepare_for_sampling(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Make a loaded model fast to sample from: eval mode, frozen, linear layers packed when in bf16."""
    model.eval()
    model.requires_grad_(False)
    if dtype == torch.bfloat16:
        count = pack_linear_layers(model)
        log.info("packed %d linear layers for bf16 decoding", count)
    return model


class GeneratorPool:
    def __init__(self, registry: ModelRegistry, dtype: str | torch.dtype | None = None, pack: bool = True):
        self.registry = registry
        self.dtype = sampling_dtype(dtype)
        self.pack = pack
        self.share = CpuShare(registry.workspace.root)  # the cores' plan beside a training worker
        self._cache: dict[str, Generator] = {}
        self._lock = threading.Lock()

    def _remote(self, name_or_path: str) -> remote_names.RemoteName | None:
        """The remote name `name_or_path` is, unless a registered version is called that."""
        remote = remote_names.parse(name_or_path)
        if remote is not None and any(v["name"] == remote.name for v in self.registry.store.model_versions()):
            return None
        return remote

    def check(self, name_or_path: str) -> None:
        """Refuse, as the caller, a name they may not sample from: an unknown model, a typed path outside the
        allowed folders (core.access), a remote model nobody listed unless they are an admin."""
        remote = self._remote(name_or_path)
        if remote is not None:
            remote_names.check_allowed(remote)
        else:
            self.registry.resolve(name_or_path)

    def get(self, name_or_path: str) -> Generator:
        remote = self._remote(name_or_path)
        if remote is not None:
            remote_names.check_allowed(remote)  # as the caller, before a cached one is handed out
            with self._lock:
                if remote.name not in self._cache:
                    self._cache[remote.name] = remote_names.build(remote)
                return self._cache[remote.name]
        ref = self.registry.resolve(name_or_path)
        with self._lock:
            generator = self._cache.get(ref.name)
            if generator is None:
                model, tokenizer = self.registry.load(ref, dtype=self.dtype)
                if self.pack:
                    model = prepare_for_sampling(model, self.dtype)
                generator = Generator(ref.name, model, tokenizer, share=self.share)
                self._cache[ref.name] = generator
            return generator

    def loaded(self) -> list[str]:
        return list(self._cache)

    def release(self, name_or_path: str) -> None:
        """Forget a loaded model (its memory goes when the last user lets go of it)."""
        remote = self._remote(name_or_path)
        name = remote.name if remote is not None else self.registry.resolve(name_or_path).name
        with self._lock:
            self._cache.pop(name, None)
