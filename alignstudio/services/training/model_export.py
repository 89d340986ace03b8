"""A trained model as a self-contained folder for use elsewhere: `alignstudio export-model RUN --out DIR`.

Owns what goes into the folder: the adapter (its config naming a portable base, a hub id where there is one)
or the merged weights, the tokenizer with its chat template, the model card (README.md) and the run card.
Written to a temporary folder renamed into place, so a failed export leaves nothing behind. Merging is
`training.merge`'s job; the card's text is `training.model_card`'s.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ...core.errors import UserError
from ...core.formats import new_folder
from ...core.registry import ModelRegistry
from ...training.merge import write_merged
from ...training.model_card import render

# training leftovers that do not belong in a shared model folder
_SKIP = {"training_args.bin", "optimizer.pt", "scheduler.pt", "trainer_state.json", "README.md"}


def export_model(
    registry: ModelRegistry, model: str, out: str | Path, merged: bool = False, dtype: str = "float32"
) -> Path:
    """Write `model` (a run folder, a registered version or a model folder) into the new folder `out`."""
    ref = registry.resolve(model)
    target = Path(out).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} already exists and is not empty")
    card_path = ref.folder.parent / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else None
    if merged and not ref.is_adapter:
        raise UserError(f"{model} is a full checkpoint already; export it without --merged")
    if merged and (ref.folder / "reward.json").is_file():
        raise UserError(f"{model} is a reward model: it exports as its adapter (without --merged)")
    with new_folder(target) as tmp:
        if merged:
            write_merged(ref, tmp, dtype)
        else:
            tmp.mkdir()
            for item in ref.folder.iterdir():
                if item.is_file() and item.name not in _SKIP and not item.name.startswith("."):
                    shutil.copy2(item, tmp / item.name)
            if ref.base_folder is not None and not (tmp / "tokenizer_config.json").exists():  # an adapter
                from ...core.models import load_tokenizer

                load_tokenizer(ref.base_folder).save_pretrained(tmp)
            if card is not None:
                (tmp / "README.md").write_text(render(card, adapter=ref.is_adapter), encoding="utf-8")
        if card is not None:
            shutil.copy2(card_path, tmp / "card.json")
    return target
