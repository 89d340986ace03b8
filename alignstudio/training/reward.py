"""Reward-model runs (`method="reward"`): a Bradley-Terry scorer trained from preference pairs with TRL's
`RewardTrainer`, LoRA plus a score head (PEFT task type SEQ_CLS) on the base model by default.

Owns: the reward run's config and trainer, the held-out split (by prompt, `split.split_by_prompt`), the held-out
pairwise accuracy, the tie margin calibrated on held-out score differences, the calibration table (predicted
P(chosen) against how often the chosen response really was preferred), and `reward.json` next to the model,
which the reward judge (`services.judges.reward`) reads. The run uses the worker's folder, metrics, cancel,
resume, saving and card code; this module only adds what differs. Loading a trained reward model for scoring
(`load_reward_model`, `score_texts`) lives here too, so the judge and the run score the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..core import models as core_models
from ..core.errors import UserError
from .verdict import judge_reward

REWARD_FILE = "reward.json"
REWARD_KIND = "reward"  # the model version kind a trained reward model is registered with
CALIBRATION_BINS = 5


# -- data checks ------------------------------------------------------------------------------------------


def check_reward_data(path: str | Path) -> None:
    """Bad reward-model data fails with one line: no labels, one class only, or single answers instead of pairs."""
    from ..core.formats import read_records

    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"training data {path} does not exist")
    empty = path.is_file() and not path.read_bytes().strip()
    records = [] if empty else [r for _, r in read_records(path)]
    if not records:
        raise UserError(
            f"{path.name}: no labels: a reward model needs labeled pairs (prompt/chosen/rejected); "
            "label some pairs and export a snapshot first"
        )
    columns = set().union(*(set(r) for r in records))
    if {"chosen", "rejected"} <= columns:
        return
    if "label" in columns:
        labels = {str(r.get("label")).strip().lower() for r in records}
        if len(labels) < 2:
            raise UserError(
                f"{path.name}: one class only: all {len(records)} labels are {labels.pop()!r}; a reward "
                "model learns from pairs where one response was preferred over another "
                "(prompt/chosen/rejected)"
            )
        raise UserError(
            f"{path.name}: single answers with labels (prompt/completion/label) are KTO data; a reward "
            "model needs pairs (prompt/chosen/rejected)"
        )
    raise UserError(f"{path.name}: needs columns prompt/chosen/rejected; found {', '.join(sorted(columns))}")


def prompt_digest(prompt) -> str:
    """A short hash of a prompt's identity (as `split.prompt_key`), to know later which prompts trained a model."""
    from .split import prompt_key

    return hashlib.sha256(prompt_key(prompt).encode("utf-8")).hexdigest()[:16]


# -- the model ----------------------------------------------------------------------------------------------


def _seqcls_from(folder: Path, dtype):
    from transformers import AutoModelForSequenceClassification
    from trl.trainer.reward_trainer import suppress_seqcls_warning

    with suppress_seqcls_warning():
        return AutoModelForSequenceClassification.from_pretrained(
            core_models.check_model_folder(folder),
            num_labels=1,
            dtype=dtype,
            use_safetensors=True,
            trust_remote_code=False,
        )


def load_for_training(spec, registry):
    """A `trainer_setup.Loaded` for a reward run: a sequence-classification model (score head, num_labels=1) on the base
    checkpoint, with a LoRA config of task type SEQ_CLS (PEFT then trains the score head in full)."""
    import torch

    from .merge import base_name
    from .trainer_setup import Loaded, lora_targets

    ref = registry.resolve(spec.model)
    if ref.is_adapter:
        raise UserError(
            f"{ref.name} is an adapter: a reward model starts from a full checkpoint; merge it first "
            "(Train tab > Merge) or use the base model"
        )
    if (ref.folder / REWARD_FILE).exists():
        raise UserError(f"{ref.name} is already a reward model; train from the base (SFT) model instead")
    tokenizer = core_models.load_tokenizer(ref.folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = _seqcls_from(ref.folder, torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    peft_config = None
    if not spec.full:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=spec.lora_r,
            lora_alpha=spec.lora_alpha,
            lora_dropout=spec.lora_dropout,
            bias="none",
            target_modules=spec.lora_target_modules or lora_targets(model),
            task_type="SEQ_CLS",
        )
    folder = Path(ref.folder)
    return Loaded(model, None, tokenizer, peft_config, folder, base_name(registry, folder), not spec.full, None)


def make_reward_config(spec, run, schedule, heldout: bool = False):
    """TRL's `RewardConfig` from the run spec and the schedule chosen for its data (`training.schedule`: the
    spec's own values where it sets them), with the same precision and saving as the other methods; with
    `heldout`, the held-out pairs are evaluated as the run goes and the best checkpoint is kept, as for DPO."""
    import torch
    from trl import RewardConfig

    from .trainer_setup import heldout_settings, precision_flags

    save_steps, evaluation = heldout_settings(spec, schedule, heldout)
    return RewardConfig(
        output_dir=str(run.path / "checkpoints"),
        learning_rate=schedule.learning_rate,
        num_train_epochs=schedule.num_train_epochs,
        max_steps=spec.max_steps or -1,
        per_device_train_batch_size=schedule.batch_size,
        gradient_accumulation_steps=spec.grad_accum,
        lr_scheduler_type=spec.lr_scheduler,
        warmup_steps=schedule.warmup_steps,
        weight_decay=spec.weight_decay,
        max_grad_norm=spec.max_grad_norm,
        seed=spec.seed,
        logging_steps=spec.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        **evaluation,
        report_to=spec.report_to or "none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        activation_checkpointing=spec.gradient_checkpointing,
        max_length=spec.max_length,
        pad_to_multiple_of=None,
        dataset_num_proc=None,
        **precision_flags(spec, torch.cuda.is_available()),
    )


def load_reward_model(folder: str | Path):
    """(model, tokenizer, meta) of a trained reward model folder; a folder that is not one is one clear error."""
    folder = Path(folder)
    meta_path = folder / REWARD_FILE
    if not folder.is_dir():
        raise UserError(f"reward model folder {folder} does not exist")
    if not meta_path.is_file():
        raise UserError(
            f"{folder} is not a reward model (no {REWARD_FILE}); train one with "
            "`alignstudio train --method reward --data LABELS`"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{meta_path} is unreadable ({exc})") from None
    model, tokenizer, _ = _scorer_from_dir(folder, meta.get("base"))
    return model, tokenizer, meta


def _texts(tokenizer, prompts: list, responses: list) -> list[str]:
    from ..core.conversation import as_messages

    out = []
    for prompt, response in zip(prompts, responses):
        messages = as_messages(prompt, "user") + as_messages(response, "assistant")
        out.append(tokenizer.apply_chat_template(messages, tokenize=False))
    return out


def score_texts(
    model, tokenizer, prompts: list, responses: list, *, batch_size: int = 16, max_length: int = 1024
) -> list[float]:
    """The reward of each (prompt, response), scored in batches, the way RewardTrainer trained it (chat template
    over prompt + response, the score at the last real token)."""
    import torch

    texts = _texts(tokenizer, prompts, responses)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths together: less padding
    scores = [0.0] * len(texts)
    tokenizer.padding_side = "right"
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in rows],
                add_special_tokens=False,
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            for i, value in zip(rows, logits[:, 0].float().tolist()):
                scores[i] = float(value)
    return scores


# -- held-out measures --------------------------------------------------------------------------------------


def calibrate_tie_margin(diffs: list[float]) -> float:
    """The tie margin m that maximizes agreement with held-out labels when a tie counts half: a pair is called
    for the chosen side when d > m, for the rejected one when d < -m, a tie otherwise (d = score(chosen) -
    score(rejected)). A tie pays exactly where the model's calls are right less than half the time."""
    if not diffs:
        return 0.0
    best_m, best = 0.0, -1.0
    for m in sorted({0.0} | {abs(d) for d in diffs}):
        value = sum(1.0 if d > m else 0.0 if d < -m else 0.5 for d in diffs)
        if value > best + 1e-12:
            best_m, best = m, value
    return float(best_m)


def calibration_table(diffs: list[float], bins: int = CALIBRATION_BINS) -> list[dict]:
    """Predicted P(chosen wins) = sigmoid(d) against the observed rate, each pair counted in both orders."""
    points = [(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, d)))), 1.0) for d in diffs]
    points += [(1.0 - p, 0.0) for p, _ in points]
    table = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(p, y) for p, y in points if lo <= p < hi or (b == bins - 1 and p == 1.0)]
        if inside:
            table.append(
                {
                    "bin": [round(lo, 2), round(hi, 2)],
                    "count": len(inside),
                    "predicted": round(sum(p for p, _ in inside) / len(inside), 4),
                    "observed": round(sum(y for _, y in inside) / len(inside), 4),
                }
            )
    return table


@dataclass
class HeldoutReport:
    pairs: int
    accuracy: float | None
    tie_margin: float
    ties: int
    agreement_with_ties: float | None
    calibration: list[dict]
    note: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def heldout_report(model, tokenizer, heldout: list[dict], note: str, max_length: int) -> HeldoutReport:
    if not heldout:
        return HeldoutReport(0, None, 0.0, 0, None, [], note)
    prompts = [r["prompt"] for r in heldout]
    chosen = score_texts(model, tokenizer, prompts, [r["chosen"] for r in heldout], max_length=max_length)
    rejected = score_texts(model, tokenizer, prompts, [r["rejected"] for r in heldout], max_length=max_length)
    diffs = [c - r for c, r in zip(chosen, rejected)]
    margin = calibrate_tie_margin(diffs)
    ties = sum(abs(d) <= margin for d in diffs)
    agreement = sum(1.0 if d > margin else 0.0 if d < -margin else 0.5 for d in diffs) / len(diffs)
    accuracy = sum(d > 0 for d in diffs) / len(diffs)
    return HeldoutReport(
        len(diffs), round(accuracy, 4), round(margin, 6), ties, round(agreement, 4), calibration_table(diffs), note
    )


# -- the run ------------------------------------------------------------------------------------------------


class RewardMethod:
    """A reward run as a method of the one training session (`worker.Session`), as `method.Method` is for a policy:
    TRL's RewardTrainer on the pairs, and once the model is saved, its held-out accuracy and tie margin written
    beside it (reward.json) and into the run card; the session registers it as a judge version."""

    registry_kind = REWARD_KIND
    shares_cpu = False

    def data(self, spec):
        from .method import data_and_split

        check_reward_data(spec.data)
        return data_and_split(spec)

    def config(self, spec, run, schedule, heldout: bool):
        return make_reward_config(spec, run, schedule, heldout=heldout)

    def load(self, spec, registry):
        loaded = load_for_training(spec, registry)
        print(
            f"model: {loaded.base_name} + score head" + (" (full fine-tuning)" if spec.full else " (LoRA, SEQ_CLS)"),
            flush=True,
        )
        return loaded

    def trainer(self, spec, args, loaded, train_set, eval_set, callbacks, workspace, metrics_cb):
        from trl import RewardTrainer

        return RewardTrainer(
            model=loaded.model,
            args=args,
            train_dataset=train_set,
            eval_dataset=eval_set,
            processing_class=loaded.tokenizer,
            peft_config=loaded.peft_config,
            callbacks=callbacks,
        )

    def card_start(self, split) -> dict:
        """The card's reward section before any measure (a cancelled or failed run keeps its split)."""
        return {"reward": {"split": split.to_dict()}}

    def judge(self, s, rows, state, extra):
        """The verdict of a succeeded run: the saved model's held-out accuracy (`measure`) with its interval."""
        held = s.card_extra.get("reward") or {}
        return [], judge_reward(rows, held.get("accuracy"), held.get("pairs") or 0) if state == "succeeded" else None

    def measure(self, s, model_dir: Path, trained: bool) -> dict:
        """Held-out accuracy and tie margin into reward.json next to the model and into the run card."""
        run, spec, split, data = s.run, s.spec, s.split, s.data
        print(f"held-out: {split.note}", flush=True)
        scorer, tokenizer, _ = _scorer_from_dir(model_dir, s.loaded.base_folder)
        report = heldout_report(scorer, tokenizer, split.heldout, split.note, spec.max_length)
        meta = {
            "kind": "alignstudio-reward",
            "version": 1,
            "base": str(s.loaded.base_folder),
            "run": run.name,
            "tie_margin": report.tie_margin,
            "heldout": report.to_dict(),
            "data_fingerprint": data.fingerprint,
            "trained_prompts": sorted({prompt_digest(r["prompt"]) for r in split.train}),
            "max_length": spec.max_length,
        }
        (Path(model_dir) / REWARD_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        s.card_extra["reward"] = {"split": split.to_dict(), **report.to_dict()}
        if report.accuracy is not None:
            print(
                f"held-out pairwise accuracy {100 * report.accuracy:.1f}% on {report.pairs} pairs; tie margin "
                f"{report.tie_margin:.4g} ({report.ties} ties)",
                flush=True,
            )
        return {}


def _scorer_from_dir(model_dir, base_folder=None):
    """A saved reward model folder loaded for scoring (adapters merged into their base: `base_folder`, the
    local base its reward.json records, else the one its adapter config resolves to)."""
    core_models.check_model_folder(Path(model_dir))
    import torch

    folder = Path(model_dir)
    tokenizer = core_models.load_tokenizer(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if core_models.is_adapter(folder):
        from peft import PeftModel

        local = base_folder if base_folder and Path(base_folder).is_dir() else core_models.adapter_base(folder)
        model = _seqcls_from(Path(local), torch.float32)
        model = PeftModel.from_pretrained(model, folder).merge_and_unload()
    else:
        model = _seqcls_from(folder, torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer, None


def newest_reward_model(store) -> str | None:
    """The newest registered reward model (the default judge), or None."""
    names = [v["name"] for v in store.model_versions() if v["kind"] == REWARD_KIND]
    return names[-1] if names else None
