"""Validate tab: the validator's report on the store's labels, a snapshot or a file, with plots."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..core.errors import UserError
from ..services.container import Services
from ..services.data.checks import bin_order, histogram
from .common import on

STORE_DPO, STORE_KTO = "store: DPO pairs", "store: KTO feedback"
FINDING_COLUMNS = ["severity", "check", "count", "message", "examples"]


@dataclass
class ValidateView:
    source: gr.Dropdown
    upload: gr.File
    max_length: gr.Number
    use_tokenizer: gr.Checkbox
    run: gr.Button
    summary: gr.Markdown
    findings: gr.Dataframe
    lengths: gr.BarPlot
    similarity: gr.BarPlot
    report: gr.Code


def _sources(services: Services) -> list[str]:
    return [
        STORE_DPO,
        STORE_KTO,
        *(f"snapshot {s['id']} ({s['kind']})" for s in services.data.snapshots()),
        "uploaded file",
    ]


def build(services: Services) -> ValidateView:
    with gr.Row():
        source = gr.Dropdown(_sources(services), value=STORE_DPO, label="Data", elem_id="validate-source", scale=2)
        upload = gr.File(
            label="File (for 'uploaded file')",
            file_types=[".jsonl", ".csv", ".parquet"],
            elem_id="validate-upload",
            scale=2,
        )
        max_length = gr.Number(
            1024, label="max_length (truncation check)", precision=0, elem_id="validate-max-length", scale=1
        )
        use_tokenizer = gr.Checkbox(
            True, label="Count tokens with the default model's tokenizer", elem_id="validate-tokenizer", scale=1
        )
    run = gr.Button("Validate", variant="primary", elem_id="validate-run")
    summary = gr.Markdown(elem_id="validate-summary")
    findings = gr.Dataframe(
        pd.DataFrame(columns=FINDING_COLUMNS), interactive=False, wrap=True, elem_id="validate-findings"
    )
    with gr.Row():
        lengths = gr.BarPlot(
            x="bin", y="count", color="series", title="Response length (words)", elem_id="validate-lengths"
        )
        similarity = gr.BarPlot(
            x="bin", y="count", color="series", title="Chosen/rejected similarity", elem_id="validate-similarity"
        )
    with gr.Accordion("Full report", open=False):
        report = gr.Code(language=None, elem_id="validate-report")
    return ValidateView(source, upload, max_length, use_tokenizer, run, summary, findings, lengths, similarity, report)


def run_validation(services: Services, source: str, upload, max_length, use_tokenizer: bool) -> tuple:
    tokenizer = None
    if use_tokenizer:
        tokenizer = services.tokenizer(services.default_model)
    max_length = int(max_length) if max_length else None
    if source in (STORE_DPO, STORE_KTO):
        report = services.data.validate_labels(
            "dpo" if source == STORE_DPO else "kto", tokenizer=tokenizer, max_length=max_length
        )
    elif source == "uploaded file":
        if not upload:
            raise UserError("upload a file first")
        report = services.data.validate_file(
            upload if isinstance(upload, str) else upload.name, tokenizer=tokenizer, max_length=max_length
        )
    else:
        parts = (source or "").split()
        if len(parts) < 2:
            raise UserError("choose what to validate: the store, a snapshot or an uploaded file")
        report = services.data.validate_snapshot(parts[1], tokenizer=tokenizer, max_length=max_length)
    counts = report.counts()
    verdict = (
        "**Errors found: training is blocked until they are fixed (or explicitly overridden).**"
        if report.has_errors
        else "**No errors.**"
        if not report.has_warnings
        else "**Warnings only.**"
    )
    summary = (
        f"{verdict} {report.n_rows} {report.kind.upper()} rows · {counts['error']} errors · "
        f"{counts['warning']} warnings · {counts['info']} notes"
    )
    findings = pd.DataFrame(
        [
            {"severity": f.severity, "check": f.check, "count": f.count, "message": f.message, "examples": _examples(f)}
            for f in report.findings
        ],
        columns=FINDING_COLUMNS,
    )
    stats = report.stats
    if report.kind == "dpo":
        lengths = histogram({"chosen": stats.get("chosen_words", []), "rejected": stats.get("rejected_words", [])})
        similarity = histogram({"pairs": stats.get("similarity", [])}, bins=10, value_range=(0.0, 1.0))
    else:
        lengths = histogram(
            {"desirable": stats.get("desirable_words", []), "undesirable": stats.get("undesirable_words", [])}
        )
        similarity = histogram({})
    return summary, findings, bars(lengths), bars(similarity), report.to_text()


def _examples(finding) -> str:
    """Row numbers, and the finding's concrete lines where it has any (e.g. which annotator said what)."""
    rows = ("rows " + ", ".join(map(str, finding.examples))) if finding.examples else ""
    return "; ".join([rows] * bool(rows) + list(finding.details))


def bars(frame: pd.DataFrame):
    """A histogram for a BarPlot, its bins in numeric order."""
    return gr.update(value=frame, sort=bin_order(frame) or None)


def sources(services: Services, current: str | None):
    """The data sources as they are now (new snapshots), keeping the choice while it still exists."""
    choices = _sources(services)
    return gr.update(choices=choices, value=current if current in choices else STORE_DPO)


def wire(view: ValidateView, services: Services, tab: gr.Tab, demo: gr.Blocks | None = None) -> None:
    for event in [tab.select] + ([demo.load] if demo is not None else []):
        on(
            event,
            lambda current: sources(services, current),
            [view.source],
            view.source,
            api_name=False,
            show_progress="hidden",
        )
    on(
        view.run.click,
        lambda *v: run_validation(services, *v),
        [view.source, view.upload, view.max_length, view.use_tokenizer],
        [view.summary, view.findings, view.lengths, view.similarity, view.report],
        api_name="validate",
    )
