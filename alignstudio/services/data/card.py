"""The dataset card (README.md) written into every snapshot and export folder: a YAML header the Hugging Face Hub
reads (license, task categories, size category, configs), how the data was made (models, sampling settings,
label sources, annotators, overlap, agreement, what was left out), and what each column means."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from .annotators import ANCHOR_LINE, annotator_quality

MARK = "<!-- dataset card written by AlignStudio -->"  # a README.md that has it may be rewritten by a later export
COLUMNS = {
    "dpo": {
        "prompt": "the conversation so far, a list of {role, content} messages ending with the user's turn",
        "chosen": "the preferred assistant answer, as a one-message list (a human rewrite, where one was made)",
        "rejected": "the other answer, as a one-message list",
        "strength": "how much better the chosen answer is: much, slight, or empty for a plain 'better'",
    },
    "kto": {
        "prompt": "the conversation so far, a list of {role, content} messages ending with the user's turn",
        "completion": "one assistant answer, as a one-message list",
        "label": "true: the answer is desirable (thumbs up, or the chosen side of a pair); false: undesirable",
    },
}
SAMPLING_KEYS = ("temperature", "top_p", "max_new_tokens", "seed", "system")


def size_category(n: int) -> str:
    """The Hub's size_categories value for `n` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M" if n < 10_000_000 else "n>10M"


def _header(kind: str, rows: int, license_id: str) -> str:
    meta = {
        "license": license_id,
        "task_categories": ["text-generation"],
        "language": ["en"],
        "tags": [kind, "preference", "trl", "alignstudio"],
        "size_categories": [size_category(rows)],
        # the layout `Dataset.push_to_hub` writes (the local folder itself is a `save_to_disk` folder)
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _sampling(labels: Sequence[Mapping]) -> list[str]:
    """One line per model with the sampling settings its answers were drawn with (each answer counted once)."""
    answers: dict[tuple, tuple[str, str]] = {}
    for r in labels:
        if "pair_id" in r:  # a pair: both answers
            sides = [("A", "model_a", "params_a"), ("B", "model_b", "params_b")]
            item = r["pair_id"]
        else:  # a rated answer (feedback rows carry no settings)
            sides, item = [("", "model", "params")], r.get("gen_id")
        for side, model_key, params_key in sides:
            params = r.get(params_key) or {}
            shown = {k: params[k] for k in SAMPLING_KEYS if k in params and k != "seed"}
            answers[(item, side)] = (str(r.get(model_key) or "unknown"), json.dumps(shown, sort_keys=True))
    seen: dict[str, Counter] = {}
    for model, settings in answers.values():
        seen.setdefault(model, Counter())[settings] += 1
    lines = []
    for model, settings in sorted(seen.items()):
        described = "; ".join(
            f"{', '.join(f'{k}={v}' for k, v in json.loads(s).items()) or 'settings not recorded'} ({n} answers)"
            for s, n in settings.most_common(3)
        )
        lines.append(f"- `{model}`: {described}")
    return lines or ["- not recorded"]


def _guidelines_line(labels: Sequence[Mapping]) -> str:
    """Which versions of the labeling guidelines the labels were given under, with how many labels each."""
    used = Counter(r.get("guidelines") or "" for r in labels)
    versions = ", ".join(f"`{v}` ({n} labels)" for v, n in sorted(used.items()) if v)
    if not versions:
        return "Guidelines versions: none (every label was given without labeling guidelines)."
    without = f"; {used['']} labels without guidelines" if used[""] else ""
    return f"Guidelines versions the labels were given under: {versions}{without}."


def dataset_card(
    kind: str,
    rows: int,
    fingerprint: str,
    labels: Sequence[Mapping],
    label_sources: Mapping[str, int],
    left_out: Mapping[str, int],
    *,
    license_id: str = "other",
) -> str:
    """The card's text. `labels`: the label rows the export read (`Store.preference_rows` for DPO, also
    `feedback_rows` for KTO), already filtered by source."""
    preference = [r for r in labels if "pair_id" in r]
    human = [r for r in labels if r.get("source") == "human"]
    per_item = Counter(str(r.get("pair_id") or r.get("gen_id")) for r in human)
    quality = annotator_quality(preference)
    lines = [
        _header(kind, rows, license_id),
        MARK,
        "",
        f"# Preference data ({kind.upper()}, {rows} rows)",
        "",
        f"Made with AlignStudio: people (and any judges named below) compared or rated answers sampled from the "
        f"models below. Content fingerprint `{fingerprint}` (recorded in the card of every run trained on it).",
        "",
        "## How the data was made",
        "",
        "Models and sampling settings:",
        *_sampling(labels),
        "",
        "Rows by the source of the deciding label: "
        + (", ".join(f"{k} {v}" for k, v in sorted(label_sources.items())) or "none recorded")
        + ".",
        f"Human annotators: {len({r.get('annotator') for r in human})}, over {len(human)} labels; "
        f"at most {max(per_item.values(), default=0)} annotators per item (overlap).",
    ]
    campaign = quality.campaign
    if campaign is not None and campaign.agreement is not None:
        lines.append(
            f"Agreement of each annotator with the others' consensus: {campaign.agreement:.0%} over "
            f"{campaign.agreement_n} labels"
            + (
                f"; Fleiss' kappa {quality.fleiss_kappa:.2f} over {quality.fleiss_items} pairs with "
                f"{quality.fleiss_raters} annotators each"
                if quality.fleiss_kappa is not None
                else ""
            )
            + f". {ANCHOR_LINE}"
        )
    else:
        lines.append("Agreement: no item was labeled by two or more people, so none was measured.")
    told = [f"{count} {what}" for what, count in left_out.items() if count]
    lines.append(f"Left out: {', '.join(told)}." if told else "Nothing was left out.")
    lines.append(_guidelines_line(labels))
    lines += ["", "## Columns", ""]
    lines += [f"- `{name}`: {meaning}" for name, meaning in COLUMNS[kind].items()]
    lines += ["", "Load with `datasets.load_dataset(REPO)` on the Hub, or `datasets.load_from_disk(FOLDER)` locally."]
    return "\n".join(lines) + "\n"


def write_card(folder: Path, text: str) -> Path | None:
    """README.md in `folder`, unless a README.md there is someone's own (not a card of ours): None then."""
    path = Path(folder) / "README.md"
    if path.exists() and MARK not in path.read_text(encoding="utf-8", errors="replace"):
        return None
    path.write_text(text, encoding="utf-8")
    return path
