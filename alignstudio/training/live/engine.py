"""The live policy in memory: a LoRA adapter (PEFT) on the chosen model, trained in short DPO bursts.

Loaded once by the live worker and kept between bursts (no reload per burst). A burst trains TRL's DPOTrainer
from the current adapter on the labels no kept version has learned plus a replay of learned ones, measures the
held-out preference loss and accuracy before and after, and keeps the result as version vN only if the held-out
loss went down and the policy stayed within the session's drift budget (`budget.LiveDrift`); otherwise the
adapter's weights are restored to the current version's. The reference is the base
model (the adapter disabled, no second model): it never changes in a session, so its log-probs are computed once
per pair and cached in memory (`_ReferenceCache`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

from ...core import models as core_models
from ...core.errors import UserError
from ...core.registry import ModelRegistry
from ..merge import base_name
from ..trainer_setup import lora_targets
from .budget import LiveDrift
from .folder import LiveFolder, LiveSettings, split_labels, version_name

ADAPTER_FILE = "adapter_model.safetensors"


def _live_trainer(cache: dict):
    """TRL's DPOTrainer whose reference pass is the base (TRL adds a frozen "ref" copy of a PeftModel's adapter as
    the reference; the live policy's reference is the base, so that copy is dropped) and reads / fills `cache`,
    keyed by the tokenized row, so a pair's reference log-probs are computed once in the session."""
    from datasets import Dataset
    from datasets.fingerprint import Hasher
    from trl import DPOTrainer

    class LiveDPOTrainer(DPOTrainer):
        def _precompute_ref_logps(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
            drop_reference_copy(self.accelerator.unwrap_model(self.model))
            keys = [Hasher.hash(row) for row in dataset]
            missing = [i for i, key in enumerate(keys) if key not in cache]
            if missing:
                scored = super()._precompute_ref_logps(dataset.select(missing), name, batch_size)
                for i, chosen, rejected in zip(missing, scored["ref_chosen_logps"], scored["ref_rejected_logps"]):
                    cache[keys[i]] = (chosen, rejected)
            dataset = dataset.add_column("ref_chosen_logps", [cache[k][0] for k in keys])
            return dataset.add_column("ref_rejected_logps", [cache[k][1] for k in keys])

    return LiveDPOTrainer


def drop_reference_copy(model) -> None:
    """Remove TRL's frozen "ref" copy of the adapter, leaving the trained "default" adapter active."""
    if "ref" in getattr(model, "peft_config", {}):
        model.set_adapter("default")
        model.delete_adapter("ref")


def adapter_state(model) -> dict:
    """The adapter's weights (PEFT's state dict of the trainable adapter), as saved in a version."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}


def weights_digest(state: dict) -> str:
    """A digest of adapter tensors (names, dtypes, shapes and bytes): equal digests, equal weights."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class LiveEngine:
    def __init__(self, folder: LiveFolder, registry: ModelRegistry):
        self.folder = folder
        self.registry = registry
        self.settings: LiveSettings = folder.settings()
        self.model = None
        self.tokenizer = None
        self.base = ""  # the base's registry name
        self.reference_cache: dict = {}
        self.current: int | None = None  # the version the weights are now
        self.drift = LiveDrift(folder.path, self.settings.drift_budget)

    # -- loading and versions ----------------------------------------------------------------------------------

    def load(self) -> None:
        """The base model with a fresh LoRA adapter, saved as v0 (the policy before any label); a restarted worker
        continues from the newest version instead."""
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, set_seed

        s = self.settings
        ref = self.registry.resolve(s.model)
        if ref.is_adapter:
            raise UserError(
                f"model {ref.name} is a LoRA adapter: merge it first (Train tab > Merge) and start the live session "
                "from the merged checkpoint"
            )
        self.base = base_name(self.registry, ref.folder)
        self.tokenizer = core_models.load_tokenizer(ref.folder)
        cuda = torch.cuda.is_available()
        model = AutoModelForCausalLM.from_pretrained(
            core_models.check_model_folder(ref.folder),
            dtype=torch.float32,
            use_safetensors=True,
            trust_remote_code=False,
        )
        model.config.use_cache = False
        if cuda:
            model.to("cuda")
        set_seed(s.seed)  # the same settings start from the same adapter
        config = LoraConfig(
            r=s.lora_r,
            lora_alpha=s.lora_alpha,
            lora_dropout=0.0,
            bias="none",
            target_modules=lora_targets(model),
            task_type="CAUSAL_LM",
        )
        self.model = get_peft_model(model, config)
        kept = self.folder.version_numbers()
        if kept:
            self.rollback(self.folder.state().get("current", kept[-1]))
        else:
            self._save_version(0, [], {"burst": None, "heldout": None})

    def _save_version(self, number: int, learned: list[str], card: dict) -> None:
        """versions/vN written under another name and renamed whole, then registered as a model version."""
        dest = self.folder.version_dir(number)
        partial = dest.with_name(f".{dest.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        self.model.save_pretrained(str(partial), safe_serialization=True)
        card = {
            "session": self.folder.name,
            "version": number,
            "name": version_name(self.folder.name, number),
            "base_model": {"name": self.base, "folder": str(self.registry.resolve(self.settings.model).folder)},
            "labels_learned": len(learned),
            "time": time.time(),
            **card,
        }
        (partial / "learned.json").write_text(json.dumps(learned))
        (partial / "card.json").write_text(json.dumps(card, indent=1))
        os.replace(partial, dest)
        self.registry.store.register_model(card["name"], dest, kind="adapter", base=self.base, run_dir=self.folder.path)
        self.current = number

    def rollback(self, number: int) -> None:
        """The adapter's weights become exactly version `number`'s."""
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        path = self.folder.version_dir(number) / ADAPTER_FILE
        if not path.exists():
            raise UserError(f"live session {self.folder.name} has no version v{number}")
        result = set_peft_model_state_dict(self.model, load_file(str(path), device=str(self.model.device)))
        if getattr(result, "unexpected_keys", None):
            raise UserError(f"version v{number} does not fit this adapter: {result.unexpected_keys[:3]}")
        self.current = number

    # -- a burst -----------------------------------------------------------------------------------------------

    def plan(self) -> tuple[list[dict], list[dict], list[dict]]:
        """(new training rows, replayed rows, held-out rows) for the next burst from the current version."""
        s = self.settings
        labels = self.folder.labels()
        learned = set(self.folder.learned(self.current))
        train, heldout = split_labels(labels, s.heldout_fraction)
        new = [r for r in train if r["id"] not in learned]
        earlier = [r for r in train if r["id"] in learned]
        replay = random.Random(s.seed + len(labels)).sample(earlier, min(s.replay, len(earlier)))
        return new, replay, heldout

    def _config(self, number: int, eval_rows: int):
        import torch
        from trl import DPOConfig

        s = self.settings
        cuda = torch.cuda.is_available()
        return DPOConfig(
            output_dir=str(self.folder.path / "trainer"),
            per_device_train_batch_size=s.batch_size,
            per_device_eval_batch_size=min(8, max(1, eval_rows)),
            learning_rate=s.learning_rate,
            lr_scheduler_type="constant",
            max_steps=s.steps,
            beta=s.beta,
            max_length=s.max_length,
            seed=s.seed + number,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            precompute_ref_log_probs=True,
            precompute_ref_batch_size=8,
            use_cpu=not cuda,
            bf16=cuda and torch.cuda.is_bf16_supported(),
        )

    def burst(self, callbacks: list | None = None) -> dict:
        """Train one burst; keep it as a new version if the held-out loss went down. Returns its record (also
        appended to bursts.jsonl). A burst that raises is recorded as failed, the weights back at the version's."""
        number = len(self.folder.bursts()) + 1
        started = time.time()
        new, replay, heldout = self.plan()
        row = {
            "burst": number,
            "from_version": self.current,
            "new_labels": len(new),
            "replayed": len(replay),
            "heldout_labels": len(heldout),
            "started": started,
            "start_weights": weights_digest(adapter_state(self.model)),  # what the burst trained from
        }
        if not new:
            return self._record(row, "skipped", "no new training labels since the current version")
        if not heldout:
            return self._record(row, "discarded", "no held-out labels yet: the burst cannot be measured")
        try:
            return self._train(row, new, replay, heldout, callbacks)
        except Exception as exc:  # noqa: BLE001 - a failed burst is recorded; the session goes on at its version
            drop_reference_copy(self.model)
            self.rollback(self.current)
            text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
            return self._record(row, "failed", f"the burst failed and the policy stays at v{self.current}: {text}")

    def _train(self, row: dict, new: list[dict], replay: list[dict], heldout: list[dict], callbacks) -> dict:
        from datasets import Dataset
        from transformers.trainer_callback import PrinterCallback

        number = row["burst"]
        columns = ("prompt", "chosen", "rejected")
        pick = lambda rows: Dataset.from_list([{c: r[c] for c in columns} for r in rows])  # noqa: E731
        trainer = _live_trainer(self.reference_cache)(
            model=self.model,
            args=self._config(number, len(heldout)),
            train_dataset=pick(new + replay),
            eval_dataset=pick(heldout),
            processing_class=self.tokenizer,
            callbacks=list(callbacks or []),
        )
        trainer.remove_callback(PrinterCallback)
        before = trainer.evaluate()
        trainer.train()
        after = trainer.evaluate()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h and "eval_loss" not in h]
        row.update(
            before={"loss": before["eval_loss"], "accuracy": before.get("eval_rewards/accuracies")},
            after={"loss": after["eval_loss"], "accuracy": after.get("eval_rewards/accuracies")},
            train_losses=losses,
            steps=trainer.state.global_step,
        )
        losses_note = f"held-out loss {before['eval_loss']:.4f} -> {after['eval_loss']:.4f}"
        if after["eval_loss"] < before["eval_loss"]:
            row["drift"] = drift = self.drift.measure(self.model, self.tokenizer, trainer.args)
            if drift is not None and not drift["within"]:
                self.rollback(self.current)
                return self._record(
                    row,
                    "discarded",
                    f"{losses_note}, but the held-out text's perplexity rose {100 * drift['drift']:+.1f}%, over the "
                    f"drift budget (+{100 * drift['budget']:.1f}%)",
                )
            learned = self.folder.learned(self.current) + [r["id"] for r in new]
            version = max(self.folder.version_numbers()) + 1
            self._save_version(
                version,
                learned,
                {
                    "burst": number,
                    "from_version": row["from_version"],
                    "heldout": row["after"],
                    "before": row["before"],
                    "drift": drift,
                },
            )
            row["version"] = version
            within = f", drift {100 * drift['drift']:+.1f}% (budget +{100 * drift['budget']:.1f}%)" if drift else ""
            return self._record(row, "kept", losses_note + within)
        self.rollback(self.current)
        return self._record(row, "discarded", f"held-out loss did not improve ({losses_note})")

    def _record(self, row: dict, outcome: str, note: str) -> dict:
        row.update(outcome=outcome, note=note, finished=time.time(), current=self.current)
        row["seconds"] = round(row["finished"] - row["started"], 3)
        self.folder.record_burst(row)
        print(f"burst {row['burst']}: {outcome}: {note}", flush=True)
        return row


def version_weights(folder: LiveFolder, number: int) -> dict:
    """A kept version's adapter tensors as saved (tests and checks compare them with the live weights)."""
    from safetensors.torch import load_file

    return load_file(str(Path(folder.version_dir(number)) / ADAPTER_FILE))
