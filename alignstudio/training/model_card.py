"""The model card (README.md) in every trained model folder: what a person needs to trust and reuse the model.

Built from the run card (card.json, the source of truth) with huggingface_hub's `ModelCardData` for the YAML
header (base_model, library_name, tags), so the Hub and `ModelCard.load` read it. Sections: method and
settings, data (fingerprint, size, label sources), held-out metrics and verdict, the evaluation against the
base and the alignment tax when one was run, and how to load the model. Replaces PEFT's empty template.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core import models as core_models

EVALUATION_KEY = "evaluation"  # card.json: the latest evaluation against the base (services.evaluation)
CAPABILITIES_KEY = "capabilities"  # card.json: the latest capability check (services.evaluation.capabilities)
DROP_LIMIT = 0.05  # the DPO guide: a benchmark drop above 5% (here: points of the score) is too aggressive


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _settings(card: dict) -> list[str]:
    spec, schedule = card.get("spec") or {}, card.get("schedule") or {}
    method = card.get("method") or spec.get("method")
    loss = ", ".join(spec.get("loss_type") or []) or "default"
    rows = [
        ("method", f"{method} (loss {loss})" if method != "reward" else "reward model (Bradley-Terry)"),
        ("beta", spec.get("beta") if method != "reward" else None),  # a reward model has no beta
        ("learning rate", schedule.get("learning_rate", spec.get("learning_rate"))),
        ("epochs", schedule.get("num_train_epochs", spec.get("num_train_epochs"))),
        ("batch size", schedule.get("batch_size", spec.get("batch_size"))),
        ("steps", (card.get("final_metrics") or {}).get("step")),
        ("max length", spec.get("max_length")),
        ("seed", spec.get("seed")),
    ]
    rows.append(
        (
            "parameters",
            "full fine-tuning"
            if spec.get("full")
            else f"LoRA r={spec.get('lora_r')} alpha={spec.get('lora_alpha')} dropout={spec.get('lora_dropout')}",
        )
    )
    shown = [(k, v) for k, v in rows if not (k == "beta" and v is None)]
    return ["| setting | value |", "|---|---|"] + [f"| {k} | {_fmt(v, 4)} |" for k, v in shown]


def _data(card: dict) -> list[str]:
    data = card.get("dataset") or {}
    heldout = data.get("heldout") or {}
    lines = [
        f"- source: `{data.get('source')}`",
        f"- fingerprint: `{data.get('fingerprint')}`",
        f"- rows: {data.get('rows')} ({data.get('training_rows')} trained on, "
        f"{heldout.get('heldout_rows', 0)} held out by prompt)",
    ]
    sources = data.get("label_sources")
    if sources:
        lines.append("- label sources: " + ", ".join(f"{k} {v}" for k, v in sorted(sources.items())))
    else:
        lines.append("- label sources: not recorded (trained from a file, not a snapshot of the store)")
    return lines


def _results(card: dict) -> list[str]:
    verdict = card.get("verdict") or {}
    final = card.get("final_metrics") or {}
    lines = [f"**Verdict:** {verdict.get('headline') or card.get('state')}"]
    if verdict.get("detail"):
        lines.append(f"{verdict['detail']}")
    lines.append("")
    keys = [
        ("held-out accuracy", verdict.get("heldout_accuracy")),
        ("best step", verdict.get("best_step")),
        ("final training loss", final.get("loss")),
        ("final reward accuracy", final.get("rewards/accuracies")),
        ("final reward margin", final.get("rewards/margins")),
    ]
    reward = card.get("reward") or {}
    if reward.get("accuracy") is not None:
        keys.append(("held-out pairwise accuracy (reward model)", reward.get("accuracy")))
    lines += [f"- {k}: {_fmt(v)}" for k, v in keys if v is not None]
    return lines


def _evaluation(card: dict) -> list[str]:
    ev = card.get(EVALUATION_KEY)
    if not ev:
        return [
            "Not run yet: the Train tab's *Evaluate against the base* button or `alignstudio eval` measures "
            "the win rate on held-out prompts and the alignment tax (perplexity change on held-out text)."
        ]
    low, high = ev.get("win_rate_ci") or [None, None]
    tax = ev.get("perplexity_change_pct")
    lines = [
        f"- against `{ev.get('baseline')}` on {ev.get('n')} held-out prompts, judged by `{ev.get('judge')}` "
        f"in both orders: win rate {_fmt(ev.get('win_rate'))} (95% CI [{_fmt(low)}, {_fmt(high)}]), "
        f"W/T/L {ev.get('wins')}/{ev.get('ties')}/{ev.get('losses')}",
        "- alignment tax: "
        + (f"perplexity on held-out text {tax:+.1f}%" if tax is not None else "not measured in that evaluation"),
        f"- report: `{ev.get('report')}`",
    ]
    if ev.get("warning"):
        lines.insert(0, f"**{ev['warning']}**")
    return lines


def _score(value, fraction: bool) -> str:
    """A [0, 1] score in points (100 = all right); any other metric as it is."""
    if value is None:
        return "n/a"
    return f"{100 * value:.1f}" if fraction else f"{value:.4g}"


def capability_lines(check: dict) -> list[str]:
    """A capability check (`CapabilityReport.to_dict`) as markdown: each task's metric for the base and the
    trained model with standard errors, the delta in points with its (paired) standard error, and the verdict."""
    limit = f", at most {check['limit']} questions per task" if check.get("limit") else ""
    lines = [
        f"lm-evaluation-harness {check.get('lm_eval_version') or ''} on `{check.get('tasks')}`{limit}: "
        f"`{check.get('model')}` against its base `{check.get('baseline')}` (scores in [0, 1] shown in points, "
        "100 = all right).",
        "",
        "| task | metric | base | trained | delta | SE of delta | questions |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in check.get("scores") or []:
        flag, frac = " **drop**" if s.get("dropped") else "", s.get("fraction", True)
        delta = f"{100 * s['delta']:+.1f}" if frac else f"{s['delta']:+.4g}"
        lines.append(
            f"| {s['task']} | {s['metric']} | {_score(s['base'], frac)} ± {_score(s.get('base_stderr'), frac)} | "
            f"{_score(s['trained'], frac)} ± {_score(s.get('trained_stderr'), frac)} | {delta}{flag} | "
            f"{_score(s.get('delta_stderr'), frac)} | {s.get('n')} |"
        )
    verdict = check.get("verdict") or ""
    lines += ["", f"**{verdict}**" if any(s.get("dropped") for s in check.get("scores") or []) else verdict]
    return lines


def _capabilities(card: dict) -> list[str]:
    check = card.get(CAPABILITIES_KEY)
    if not check:
        return [
            "Not run yet: the Train tab's *Check capabilities* button or `alignstudio eval --capabilities TASKS "
            "--model RUN` scores lm-evaluation-harness tasks on this model and its base (a drop of more than "
            f"{100 * DROP_LIMIT:.0f} points means the training was too aggressive)."
        ]
    return capability_lines(check)


def _loading(card: dict, portable: str, adapter: bool) -> list[str]:
    if not adapter:
        return [
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
            "```",
        ]
    return [
        "```python",
        "from peft import AutoPeftModelForCausalLM",
        f"# loads the base `{portable}` from the Hugging Face cache (or the hub), then this adapter",
        'model = AutoPeftModelForCausalLM.from_pretrained("path/to/this/folder")',
        "```",
        "With the base in a local folder: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), "
        "folder)`.",
    ]


def render(card: dict, adapter: bool) -> str:
    """README.md text (YAML header + sections) for a run card."""
    from huggingface_hub import ModelCardData

    base = card.get("base_model") or {}
    portable = base.get("portable") or base.get("folder") or base.get("name")
    method = card.get("method") or "dpo"
    reward = method == "reward"
    tags = ["alignstudio", "trl", method] + (["lora"] if adapter else []) + (["reward-model"] if reward else [])
    data = ModelCardData(
        base_model=portable,
        library_name="peft" if adapter else "transformers",
        tags=tags,
        pipeline_tag="text-classification" if reward else "text-generation",
    )
    body = [
        f"# {card.get('run')}",
        "",
        f"{'A LoRA adapter' if adapter else 'A model'} trained with AlignStudio by "
        f"{method.upper()} on `{portable}`"
        + (f", continuing `{base['continued_from']}`" if base.get("continued_from") else "")
        + ".",
    ]
    if base.get("name") == core_models.EMBEDDED_NAME:
        body += [
            "",
            f"The base weights used here are the Q4_1 GGUF of `{core_models.EMBEDDED_HUB_ID}` "
            "dequantized to float32: close to the hub's weights, not identical. An adapter loaded on the "
            "hub's weights behaves nearly the same; for exactly the weights that were trained, export "
            "the merged model (`alignstudio export-model RUN --merged --out DIR`).",
        ]
    body += [
        "",
        "## Method and settings",
        "",
        *_settings(card),
        "",
        "## Data",
        "",
        *_data(card),
        "",
        "## Held-out results",
        "",
        *_results(card),
        "",
        "## Evaluation against the base",
        "",
        *_evaluation(card),
        "",
        *([] if reward else ["## Capability checks (lm-evaluation-harness)", "", *_capabilities(card), ""]),
        "## Loading",
        "",
        *_loading(card, portable, adapter),
        "",
        f"Local base folder on the training machine: `{base.get('folder')}`. The full record of the run "
        "(spec, schedule, trainer configuration, library versions) is its card.json.",
    ]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"


def write_model_card(model_dir: str | Path, card: dict) -> Path:
    """README.md into the model folder, replaced atomically."""
    model_dir = Path(model_dir)
    path = model_dir / "README.md"
    tmp = model_dir / ".README.md.partial"
    tmp.write_text(render(card, adapter=(model_dir / "adapter_config.json").is_file()), encoding="utf-8")
    tmp.replace(path)
    return path


def record_evaluation(run_dir: str | Path, summary: dict, key: str = EVALUATION_KEY) -> None:
    """Keep an evaluation against the base (or, with `key`, a capability check) in the run's card and refresh
    its model card."""
    from .card import write_card

    run_dir = Path(run_dir)
    card_path = run_dir / "card.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card[key] = summary
    write_card(card_path, card)
    if (run_dir / "model").is_dir():
        write_model_card(run_dir / "model", card)


def record_capabilities(run_dir: str | Path, check: dict) -> None:
    """Keep a capability check in the run's card (when the run has one) and refresh its model card."""
    if (Path(run_dir) / "card.json").is_file():
        record_evaluation(run_dir, check, CAPABILITIES_KEY)
