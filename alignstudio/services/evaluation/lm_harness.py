"""lm-evaluation-harness for the capability checks (`capabilities`): which tasks a text names (lm-eval task names,
local task folders, the shipped offline task), one model's scores with lm-eval's `HFLM` on a model loaded the way
sampling loads it, and the side-by-side comparison with the delta's standard error."""

from __future__ import annotations

import gc
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ...core import access
from ...core.errors import UserError
from ...training.model_card import DROP_LIMIT

TASKS_FOLDER = Path(__file__).resolve().parents[3] / "data" / "capabilities"  # the shipped local task(s)
TASKS_FIELD = "Capability tasks"  # the form's name for the tasks, used in errors


@dataclass(frozen=True)
class CapabilityScore:
    """One metric of one task for both models. `delta_stderr` is paired (per-question differences) where
    lm-eval kept the per-question scores, else from the two standard errors as if independent."""

    task: str
    metric: str
    base: float
    trained: float
    base_stderr: float | None
    trained_stderr: float | None
    delta_stderr: float | None
    n: int
    higher_is_better: bool = True

    @property
    def delta(self) -> float:
        return self.trained - self.base

    @property
    def drop(self) -> float:
        """How much worse the trained model scores (negative: better)."""
        return -self.delta if self.higher_is_better else self.delta

    @property
    def fraction(self) -> bool:
        """A score in [0, 1] (accuracy and the like), where the 5% threshold means 5 points; for any other
        metric (perplexity, ...) it means 5% of the base's value."""
        return 0.0 <= self.base <= 1.0 and 0.0 <= self.trained <= 1.0

    @property
    def relative_drop(self) -> float:
        """The drop measured against the threshold's unit: points of a [0, 1] score, else a share of the base."""
        return self.drop / (1.0 if self.fraction or not self.base else abs(self.base))

    @property
    def dropped(self) -> bool:
        return self.relative_drop > DROP_LIMIT

    @property
    def change(self) -> str:
        """The delta as a person reads it: '-7.0 points' for a [0, 1] score, '+0.52 (+5.1%)' otherwise."""
        if self.fraction:
            return f"{100 * self.delta:+.1f} points"
        share = f" ({100 * self.delta / abs(self.base):+.1f}%)" if self.base else ""
        return f"{self.delta:+.4g}{share}"

    @property
    def beyond_noise(self) -> bool:
        """The drop exceeds two standard errors (about a 95% two-sided test)."""
        return self.delta_stderr is not None and self.drop > 2 * self.delta_stderr

    def to_dict(self) -> dict:
        derived = {"delta": self.delta, "fraction": self.fraction, "dropped": self.dropped}
        return asdict(self) | derived | {"beyond_noise": self.beyond_noise}


def task_specs(names: list[str]):
    """(lm-eval task specs, TaskManager). A local task is passed as its YAML config with the data files resolved
    against its folder: lm-eval reads relative data files from the working directory."""
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    folders, named = [TASKS_FOLDER], []
    for name in names:
        path = Path(name).expanduser()
        if "/" in name or path.is_dir():
            access.check_typed_path(path)
            if not path.is_dir() or not any(path.glob("*.yaml")):
                raise UserError(f"{TASKS_FIELD}: {name} is not a folder of lm-eval task YAML files")
            folders.append(path.resolve())
        else:
            named.append(name)
    local = TaskManager(include_path=[str(f) for f in folders], include_defaults=False)
    missing = [n for n in named if n not in local.task_index]
    manager = TaskManager(include_path=[str(f) for f in folders]) if missing else local
    unknown = [n for n in missing if n not in manager.task_index]
    if unknown:
        raise UserError(f"{TASKS_FIELD}: unknown lm-eval task(s) {', '.join(unknown)}")
    specs = []
    for entry in manager.task_index.values():
        path = entry.yaml_path.resolve() if entry.yaml_path is not None else None
        is_local = path is not None and entry.kind is Kind.TASK and any(path.is_relative_to(f) for f in folders)
        in_typed_folder = is_local and any(path.is_relative_to(f) for f in folders[1:])
        if entry.name in named or in_typed_folder:
            specs.append(_local_config(load_yaml(path, resolve_func=True), path.parent) if is_local else entry.name)
    return specs, manager


def _local_config(config: dict, folder: Path) -> dict:
    kwargs = dict(config.get("dataset_kwargs") or {})
    files = kwargs.get("data_files")
    if isinstance(files, dict):
        kwargs["data_files"] = {split: _in(folder, f) for split, f in files.items()}
    elif files is not None:
        kwargs["data_files"] = _in(folder, files)
    return config | {"dataset_kwargs": kwargs}


def _in(folder: Path, files):
    if isinstance(files, list):
        return [_in(folder, f) for f in files]
    return files if "://" in str(files) or Path(files).is_absolute() else str(folder / files)


# -- scoring -----------------------------------------------------------------------------------------------


def score(registry, name: str, specs, manager, limit: int | None, batch_size: int) -> dict:
    """lm-eval's results for one model: {task: {"metrics": {metric: (value, stderr)}, "per_doc": {...}}}."""
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM

    model, tokenizer = registry.load(registry.resolve(name))
    if torch.cuda.is_available():  # the registry loads on the CPU (for sampling); scoring is faster on a GPU
        model = model.to("cuda")
    try:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(model.device))
        out = lm_eval.simple_evaluate(
            lm,
            tasks=specs,
            task_manager=manager,
            limit=limit,
            bootstrap_iters=1000,  # used for non-mean metrics only; accuracy's error is closed-form
            verbosity="ERROR",
        )
    finally:
        del model
        gc.collect()
    found = {}
    for task, row in out["results"].items():
        metrics = {}
        for key, value in row.items():
            metric, _, filt = key.partition(",")
            if not filt or metric.endswith("_stderr") or not isinstance(value, (int, float)):
                continue
            stderr = row.get(f"{metric}_stderr,{filt}")
            metrics[metric] = (float(value), float(stderr) if isinstance(stderr, (int, float)) else None)
        per_doc = {
            m: {s["doc_id"]: float(s[m]) for s in out.get("samples", {}).get(task, []) if m in s} for m in metrics
        }
        found[task] = {
            "metrics": metrics,
            "per_doc": per_doc,
            "n": (out.get("n-samples", {}).get(task) or {}).get("effective") or 0,
            "better": out.get("higher_is_better", {}).get(task, {}),
        }
    return found


def _delta_stderr(base: dict, trained: dict, base_se, trained_se) -> float | None:
    """Paired standard error of the mean difference over the same questions (scipy's sem), else independent."""
    from scipy.stats import sem

    docs = sorted(set(base) & set(trained))
    if len(docs) >= 2 and len(docs) == len(base) == len(trained):
        return float(sem([trained[d] - base[d] for d in docs]))
    if base_se is None or trained_se is None:
        return None
    return math.sqrt(base_se**2 + trained_se**2)


def compare(base: dict, trained: dict) -> list[CapabilityScore]:
    scores = []
    for task in sorted(set(base) & set(trained)):
        b, t = base[task], trained[task]
        for metric in sorted(set(b["metrics"]) & set(t["metrics"])):
            (bv, bse), (tv, tse) = b["metrics"][metric], t["metrics"][metric]
            scores.append(
                CapabilityScore(
                    task,
                    metric,
                    bv,
                    tv,
                    bse,
                    tse,
                    _delta_stderr(b["per_doc"].get(metric, {}), t["per_doc"].get(metric, {}), bse, tse),
                    int(t["n"] or b["n"]),
                    bool(t["better"].get(metric, True)),
                )
            )
    return scores
