"""Training-ready snapshots: the store's effective labels materialized as a `datasets.Dataset` on disk.

Owns how labels become TRL rows (DPO: one row per pair by majority of decisive verdicts, ties and
both-bad left out, or in a campaign with several annotators per pair their consensus (`consensus_rows`),
with the deciding label's `strength`: "much", "slight" or None for a plain "better"; KTO: thumbs up/down,
optionally unpaired preferences) and the content fingerprint recorded in every run card. Every individual
pairwise label goes beside the rows (`labels.jsonl`). A snapshot is written to a temporary folder and renamed
into place.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ...core import access
from ...core.errors import UserError
from ...core.formats import output_suffix, replace_dir, write_records
from ...core.store import Store
from ...core.workspace import Workspace
from ...training.data import LABEL_SOURCES_FILE
from . import hub
from .card import dataset_card, write_card
from .consensus_rows import LABELS_FILE, consensus_decisions, label_rows, with_weights
from .ranking_rows import ranking_kto_rows, with_groups

KINDS = ("dpo", "kto")
LEFT_OUT_WORDS = {"tie": "tie labels", "both_bad": "both-bad labels"}


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def dpo_row(messages: list[dict], chosen: str, rejected: str) -> dict:
    """One DPO training row in TRL's conversational form."""
    return {"prompt": messages, "chosen": _assistant(chosen), "rejected": _assistant(rejected)}


def _matches(source: str, wanted: list[str]) -> bool:
    return any(
        source == s or (s.endswith(":") and source.startswith(s)) or (s == "judge" and source.startswith("judge:"))
        for s in wanted
    )


def source_kind(source: str) -> str:
    """human | judge | arena | import | synthetic: a label source without its detail (the judge's name)."""
    return (source or "unknown").split(":", 1)[0]


def _source_ok(source: str, sources: list[str] | None, exclude: list[str] | None = None) -> bool:
    """Kept: the label's source is among `sources` (all when none are named) and not among `exclude`."""
    return (not sources or _matches(source, sources)) and not (exclude and _matches(source, exclude))


def dpo_rows(
    store: Store,
    sources: list[str] | None = None,
    exclude: list[str] | None = None,
    tally: Counter | None = None,
    left_out: Counter | None = None,
) -> list[dict]:
    """One DPO row per pair whose decisive labels have a majority; contested pairs are left out. `tally`
    counts the rows by the source of the label that decided them; `left_out` counts what did not become a row
    (tie and both-bad labels, contested pairs), so the export can say so."""
    by_pair: dict[str, list[dict]] = defaultdict(list)
    read = [label for label in store.preference_rows() if _source_ok(label["source"], sources, exclude)]
    for label in read:
        if label["verdict"] in ("A", "B"):
            by_pair[label["pair_id"]].append(label)
        elif left_out is not None:
            left_out[LEFT_OUT_WORDS[label["verdict"]]] += 1
    # pairs of campaigns with several annotators per pair: the humans' consensus decides (`consensus_rows`)
    decided = consensus_decisions(store, read, left_out)
    rows = []
    for pair_id, labels in by_pair.items():
        votes_a = sum(1 for label in labels if label["verdict"] == "A")
        votes_b = len(labels) - votes_a
        if pair_id in decided:
            labels = [label for label in labels if label["source"] == "human"]
            votes_a, votes_b = (1, 0) if decided[pair_id][0] == "A" else (0, 1) if decided[pair_id][0] else (0, 0)
        elif votes_a == votes_b and left_out is not None:
            left_out["contested pairs (as many votes for A as for B)"] += 1
        if votes_a == votes_b:
            continue
        winner = "A" if votes_a > votes_b else "B"
        last = [label for label in labels if label["verdict"] == winner][-1]
        edited = [label["edited_text"] for label in labels if label["verdict"] == winner and label["edited_text"]]
        chosen = edited[-1] if edited else (last["text_a"] if winner == "A" else last["text_b"])
        rejected = last["text_b"] if winner == "A" else last["text_a"]
        rows.append(dpo_row(last["messages"], chosen, rejected) | {"strength": last["strength"]})
        rows[-1]["group_id"] = last["group_id"]  # the ranking a pair comes from; dropped below if none has one
        rows[-1]["guidelines"] = last["guidelines"]  # the guidelines version it was labeled under (likewise)
        if pair_id in decided:
            rows[-1]["weight"] = decided[pair_id][1]  # the share of its annotators who gave the verdict
        if tally is not None:
            tally[source_kind(last["source"])] += 1
    from ..labeling.guidelines import with_versions  # here: the labeling package loads torch (its sampler)

    return with_versions(with_groups(with_weights(rows)))


def kto_rows(
    store: Store,
    include_pairs: bool = False,
    sources: list[str] | None = None,
    exclude: list[str] | None = None,
    tally: Counter | None = None,
    left_out: Counter | None = None,
) -> list[dict]:
    """KTO rows from thumbs up/down (majority per response), plus unpaired preferences if asked; `left_out` as
    in `dpo_rows` (responses with as many thumbs up as down, and with pairs, what `dpo_rows` leaves out)."""
    by_gen: dict[str, list[dict]] = defaultdict(list)
    for fb in store.feedback_rows():
        if _source_ok(fb["source"], sources, exclude):
            by_gen[fb["gen_id"]].append(fb)
    rows = []
    for feedback in by_gen.values():
        ups = sum(1 for f in feedback if f["verdict"] == "up")
        downs = len(feedback) - ups
        if ups == downs:
            if left_out is not None:
                left_out["responses with as many thumbs up as down"] += 1
            continue
        rows.append(
            {"prompt": feedback[-1]["messages"], "completion": _assistant(feedback[-1]["text"]), "label": ups > downs}
        )
        if tally is not None:
            tally[source_kind(feedback[-1]["source"])] += 1
    if include_pairs:
        from datasets import Dataset
        from trl import unpair_preference_dataset

        # KTO rows are good or bad, not graded: the pairs' strength stays out. A ranking's pairs give its top
        # answer as desirable and its bottom one as undesirable (`ranking_kto_rows`), not each pair unpaired.
        pairs = [
            {k: v for k, v in row.items() if k not in ("strength", "group_id", "weight", "guidelines")}
            for row in dpo_rows(store, sources, exclude, tally, left_out)
            if not row.get("group_id")
        ]
        if pairs:
            rows.extend(unpair_preference_dataset(Dataset.from_list(pairs)).to_list())
        rows.extend(ranking_kto_rows(store, lambda source: _source_ok(source, sources, exclude)))
    return rows


def fingerprint(rows: list[dict]) -> str:
    """Content hash of the rows: the same labels always give the same fingerprint."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Snapshot:
    id: str
    kind: str
    path: Path
    fingerprint: str
    rows: int
    files: list[Path]
    left_out: dict[str, int] = field(default_factory=dict)  # what did not become a row, e.g. {"tie labels": 3}
    cards: list[Path] = field(default_factory=list)  # README.md dataset cards written (the snapshot's first)
    hub_url: str = ""  # where it was pushed, if it was

    def left_out_line(self) -> str:
        """ "Left out: 3 tie labels, 1 both-bad labels." (empty when nothing was), for the UI and the CLI."""
        parts = [f"{count} {what}" for what, count in self.left_out.items() if count]
        return f"Left out: {', '.join(parts)}." if parts else ""


def _card_labels(
    store: Store, kind: str, include_pairs: bool, sources: list[str] | None, exclude: list[str]
) -> list[dict]:
    """The label rows the export read, for its dataset card."""
    pairwise = kind == "dpo" or include_pairs
    labels = [r for r in store.preference_rows() if pairwise and _source_ok(r["source"], sources, exclude)]
    if kind == "kto":
        labels += [r for r in store.feedback_rows() if _source_ok(r["source"], sources, exclude)]
    return labels


def export_snapshot(
    store: Store,
    workspace: Workspace,
    kind: str,
    *,
    out: list[str] | None = None,
    sources: list[str] | None = None,
    include_pairs: bool = False,
    exclude_sources: list[str] | None = None,
    push_to_hub: str | None = None,
    private: bool = True,
    license_id: str = "other",
) -> Snapshot:
    """Materialize a versioned snapshot (a `datasets` folder with its README.md dataset card) and optional
    JSONL/CSV/Parquet copies (a card beside them too, unless their folder has a README.md of its own);
    `sources` keeps only those labels, `exclude_sources` leaves those out (e.g. synthetic). With `push_to_hub`
    the snapshot goes to that Hub dataset repository (token: HF_TOKEN) before anything is kept locally: a
    failed push leaves no snapshot, no files and no store entry."""
    access.require_admin("export")
    from datasets import Dataset

    if kind not in KINDS:
        raise UserError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    for path in out or []:
        output_suffix(path)  # a wrong file type fails before the snapshot is written
    token = ""
    if push_to_hub:
        token, push_to_hub = hub.hub_token(), hub.check_repo_id(push_to_hub)
    exclude, tally, left_out = exclude_sources or [], Counter(), Counter()
    rows = (
        dpo_rows(store, sources, exclude, tally, left_out)
        if kind == "dpo"
        else kto_rows(store, include_pairs, sources, exclude, tally, left_out)
    )
    if not rows:
        what = "decisive pairwise labels (A or B)" if kind == "dpo" else "thumbs up/down labels"
        told = Snapshot("", kind, Path(), "", 0, [], dict(left_out)).left_out_line()
        raise UserError(f"nothing to export: the store has no {what}" + (f". {told}" if told else ""))
    fp = fingerprint(rows)
    name = f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{fp[:8]}"
    target = workspace.snapshots_dir / name
    tmp = workspace.snapshots_dir / f".{name}.partial"
    card = dataset_card(
        kind,
        len(rows),
        fp,
        _card_labels(store, kind, include_pairs, sources, exclude),
        tally,
        left_out,
        license_id=license_id,
    )
    Dataset.from_list(rows).save_to_disk(str(tmp))
    (tmp / LABEL_SOURCES_FILE).write_text(json.dumps(dict(tally), sort_keys=True), encoding="utf-8")
    write_card(tmp, card)
    if kind == "dpo" or include_pairs:  # every individual label too, with its annotator
        labels = [r for r in store.preference_rows() if _source_ok(r["source"], sources, exclude)]
        write_records(label_rows(labels), tmp / LABELS_FILE)
    hub_url = ""
    if push_to_hub:
        try:
            hub_url = hub.push(tmp, push_to_hub, token=token, private=private)
        finally:
            if not hub_url:
                shutil.rmtree(tmp, ignore_errors=True)
    replace_dir(tmp, target)
    files = [write_records(rows, Path(path)) for path in (out or [])]
    cards = [target / "README.md"]
    for folder in dict.fromkeys(Path(f).parent for f in files):
        written = write_card(folder, card)
        if written is not None:
            cards.append(written)
    params = {
        "sources": sources or [],
        "exclude_sources": exclude,
        "include_pairs": include_pairs,
        "label_sources": dict(tally),
        "left_out": dict(left_out),
        "hub": push_to_hub or "",
    }
    sid = store.add_snapshot(kind, target, fp, len(rows), params)
    return Snapshot(sid, kind, target, fp, len(rows), files, dict(left_out), cards, hub_url)
