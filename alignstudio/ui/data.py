"""Data tab: browse, filter and fix labels; snapshots; import and export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from ..core.errors import UserError
from ..services.container import Services
from ..services.data.browser import ORIGINS, SEEN_COLUMNS, SEEN_VERDICTS, STORED_VERDICTS
from ..services.data.importing import FORMATS as IMPORT_FORMATS
from .common import on

FORMATS = ["jsonl", "csv", "parquet"]
RELABEL_CHOICES = [
    ("left is better (as the annotator saw it)", "left"),
    ("right is better", "right"),
    ("tie", "tie"),
    ("both bad", "both_bad"),
    ("A is better (stored form)", "A"),
    ("B is better (stored form)", "B"),
]
RETRACT, CONFIRM_RETRACT = "Retract", "Confirm retract"


def verdict_choices(stored: bool) -> list[tuple[str, str]]:
    """The Verdict filter in the words the table shows: as the annotator saw it, or the stored form."""
    return [("any", ""), *((v, v) for v in (STORED_VERDICTS if stored else SEEN_VERDICTS))]


@dataclass
class DataView:
    annotator: gr.Textbox
    kind: gr.Dropdown
    source: gr.Textbox
    who: gr.Textbox
    verdict: gr.Dropdown
    prompt_set: gr.Textbox
    search: gr.Textbox
    origin: gr.Dropdown
    stored: gr.Checkbox
    refresh: gr.Button
    table: gr.Dataframe
    event_id: gr.Textbox
    new_verdict: gr.Dropdown
    relabel: gr.Button
    retract: gr.Button
    retract_armed: gr.State  # the label id a first Retract click asked about; the second click retracts it
    snapshots: gr.Dataframe
    export_kind: gr.Radio
    export_formats: gr.CheckboxGroup
    include_pairs: gr.Checkbox
    no_synthetic: gr.Checkbox
    export: gr.Button
    export_files: gr.File
    upload: gr.File
    import_as: gr.Radio
    import_format: gr.Dropdown
    import_name: gr.Textbox
    import_button: gr.Button
    message: gr.Markdown
    quality_refresh: gr.Button
    quality: gr.Dataframe
    quality_plot: gr.BarPlot
    quality_note: gr.Markdown

    def filters(self) -> list:
        return [self.kind, self.source, self.who, self.verdict, self.prompt_set, self.search, self.origin, self.stored]


def build(services: Services, annotator: gr.Textbox) -> DataView:
    with gr.Row():
        kind = gr.Dropdown(["all", "preference", "feedback"], value="all", label="Kind", elem_id="data-kind")
        source = gr.Textbox(
            label="Source", placeholder="human, arena, judge:NAME, import, synthetic", elem_id="data-source"
        )
        who = gr.Textbox(label="Annotator", elem_id="data-annotator")
        verdict = gr.Dropdown(verdict_choices(False), value="", label="Verdict", elem_id="data-verdict")
        prompt_set = gr.Textbox(label="Prompt set", elem_id="data-prompt-set")
        search = gr.Textbox(label="Search text", elem_id="data-search")
        origin = gr.Dropdown(["", *ORIGINS], value="", label="Pairs made by", elem_id="data-origin")
    with gr.Row():
        stored = gr.Checkbox(
            False,
            label="Stored form (verdicts about responses A / B, and the side A was shown "
            "on) instead of what the annotator saw",
            elem_id="data-stored",
            scale=4,
        )
        refresh = gr.Button("Refresh", size="sm", elem_id="data-refresh", scale=1)
    # one line per label (no wrapping), so a screen shows a dozen labels; the event id is the last column
    table = gr.Dataframe(
        pd.DataFrame(columns=SEEN_COLUMNS), interactive=False, wrap=False, max_height=560, elem_id="data-table"
    )
    with gr.Row():
        event_id = gr.Textbox(label="Selected label (click a row)", elem_id="data-event-id", scale=3)
        new_verdict = gr.Dropdown(
            RELABEL_CHOICES, value="left", label="New verdict", elem_id="data-new-verdict", scale=1
        )
        relabel_button = gr.Button("Relabel", elem_id="data-relabel", scale=1)
        retract = gr.Button(RETRACT, variant="stop", elem_id="data-retract", scale=1)
    retract_armed = gr.State("")
    message = gr.Markdown(elem_id="data-message")
    with gr.Accordion("Snapshots and export", open=False):
        snapshots = gr.Dataframe(interactive=False, elem_id="data-snapshots")
        with gr.Row():
            export_kind = gr.Radio(["dpo", "kto"], value="dpo", label="Export kind", elem_id="data-export-kind")
            export_formats = gr.CheckboxGroup(
                FORMATS, value=["jsonl"], label="Also as files", elem_id="data-export-formats"
            )
            include_pairs = gr.Checkbox(
                False, label="KTO: add unpaired rows from pairwise labels", elem_id="data-include-pairs"
            )
            no_synthetic = gr.Checkbox(
                False, label="Leave out synthetic labels (two system prompts)", elem_id="data-no-synthetic"
            )
        export = gr.Button("Export snapshot", elem_id="data-export")
        export_files = gr.File(
            label="Exported files", file_count="multiple", interactive=False, elem_id="data-export-files"
        )
    with gr.Accordion("Import", open=False):
        upload = gr.File(
            label="JSONL, CSV or Parquet", file_types=[".jsonl", ".json", ".csv", ".parquet"], elem_id="data-upload"
        )
        with gr.Row():
            import_as = gr.Radio(
                ["preference pairs", "prompt set"],
                value="preference pairs",
                label="Import as",
                elem_id="data-import-as",
            )
            import_format = gr.Dropdown(
                list(IMPORT_FORMATS),
                value="auto",
                label="Pairs format (auto: from the columns; HH-RLHF, UltraFeedback, SHP, Orca DPO, OASST)",
                elem_id="data-import-format",
            )
            import_name = gr.Textbox(label="Prompt set name (default: file name)", elem_id="data-import-name")
        import_button = gr.Button("Import", elem_id="data-import")
    with gr.Accordion("Annotators: agreement, kappa, speed and leanings", open=False):
        quality_refresh = gr.Button("Show annotator quality", size="sm", elem_id="data-quality-refresh")
        quality_note = gr.Markdown(elem_id="data-quality-note")
        quality = gr.Dataframe(interactive=False, wrap=True, elem_id="data-quality")
        quality_plot = gr.BarPlot(
            x="who",
            y="agreement %",
            color="series",
            y_lim=[0, 100],
            title="Agreement with the others' consensus, beside published human-human agreement",
            elem_id="data-quality-plot",
        )
    return DataView(
        annotator,
        kind,
        source,
        who,
        verdict,
        prompt_set,
        search,
        origin,
        stored,
        refresh,
        table,
        event_id,
        new_verdict,
        relabel_button,
        retract,
        retract_armed,
        snapshots,
        export_kind,
        export_formats,
        include_pairs,
        no_synthetic,
        export,
        export_files,
        upload,
        import_as,
        import_format,
        import_name,
        import_button,
        message,
        quality_refresh,
        quality,
        quality_plot,
        quality_note,
    )


# -- handlers ---------------------------------------------------------------------------------------------


def load_table(
    services: Services, kind, source, who, verdict, prompt_set, search, origin="", stored=False
) -> pd.DataFrame:
    return services.data.browse(
        stored=bool(stored),
        kind=kind,
        source=source.strip(),
        annotator=who.strip(),
        verdict=verdict,
        prompt_set=prompt_set.strip(),
        search=search.strip(),
        origin=origin or "",
    )


def switch_form(services: Services, kind, source, who, verdict, prompt_set, search, origin="", stored=False) -> tuple:
    """The stored-form toggle: the table in the other form, and the Verdict filter in that form's words (reset,
    since a word of one form names nothing in the other)."""
    table = load_table(services, kind, source, who, "", prompt_set, search, origin, stored)
    return table, gr.update(choices=verdict_choices(bool(stored)), value="")


def selected_event(table: pd.DataFrame, event: gr.SelectData) -> tuple:
    """The clicked row's label id; a Retract armed for another label is disarmed."""
    row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    return str(table.iloc[row]["event_id"]), gr.update(value=RETRACT), ""


def do_relabel(services: Services, event_id: str, verdict: str, annotator: str, *filters) -> tuple:
    services.data.relabel(event_id, verdict, annotator=annotator)
    words = {value: text.split(" (")[0] for text, value in RELABEL_CHOICES}
    return load_table(services, *filters), f"Relabelled: {words.get(verdict, verdict)}; the old label is kept."


def do_retract(services: Services, event_id: str, armed: str, annotator: str, *filters) -> tuple:
    """Two clicks: the first asks (the button turns into Confirm retract), the second, on the same label,
    retracts it. Returns (table, message, button, armed label id)."""
    event_id = (event_id or "").strip()
    if not event_id:
        raise UserError("Selected label: click a row in the table first")
    if event_id != armed:
        services.data.check_retract(event_id)  # another's label is refused at once, not after a confirmation
        ask = (
            f"Retract label `{event_id}`? It leaves the training data (it stays in the history). "
            f"Click **{CONFIRM_RETRACT}** to retract it."
        )
        return gr.skip(), ask, gr.update(value=CONFIRM_RETRACT), event_id
    services.data.retract(event_id, annotator=annotator)
    return load_table(services, *filters), "Retracted; the label stays in the history.", gr.update(value=RETRACT), ""


def do_export(
    services: Services, kind: str, formats: list[str], include_pairs: bool, no_synthetic: bool = False
) -> tuple:
    snap = services.data.export(
        kind, formats=formats, include_pairs=include_pairs, exclude_sources=["synthetic"] if no_synthetic else None
    )
    note = f"Snapshot `{snap.id}`: {snap.rows} rows, fingerprint `{snap.fingerprint}`. {snap.left_out_line()}"
    note += f" Dataset card: `{snap.cards[-1]}`." if snap.cards else ""
    return [str(p) for p in snap.files], services.data.snapshot_table(), note


def do_import(services: Services, upload, import_as: str, name: str, fmt: str = "auto") -> str:
    if not upload:
        raise UserError("choose a file to import")
    path = upload if isinstance(upload, str) else getattr(upload, "name", str(upload))
    line = services.data.import_file(
        path, prompts=import_as == "prompt set", name=name.strip() or Path(path).stem, fmt=fmt or "auto"
    )
    return line[0].upper() + line[1:] + "."


def show_quality(services: Services) -> tuple:
    """The per-annotator table, its plot and the notes (an annotator gets their own count and agreement only)."""
    report = services.data.annotator_quality()
    rows = report.rows()
    note = report.to_text().split("\n\n", 1)[-1].replace("\n", " ") if rows else "No human pairwise labels yet."
    return pd.DataFrame(rows), pd.DataFrame(report.plot_rows()), note


# -- events -------------------------------------------------------------------------------------------------


def wire(view: DataView, services: Services, tab: gr.Tab, demo: gr.Blocks | None = None) -> None:
    filters = view.filters()
    me = view.annotator
    for event in [tab.select] + ([demo.load] if demo is not None else []):
        on(
            event,
            lambda *f: (load_table(services, *f), services.data.snapshot_table()),
            filters,
            [view.table, view.snapshots],
            api_name=False,
            show_progress="hidden",
        )
    on(view.refresh.click, lambda *f: load_table(services, *f), filters, view.table, api_name="data_labels")
    for box in filters:
        if box is view.stored:
            on(box.change, lambda *f: switch_form(services, *f), filters, [view.table, view.verdict], api_name=False)
            continue
        event = box.submit if isinstance(box, gr.Textbox) else box.change
        on(event, lambda *f: load_table(services, *f), filters, view.table, api_name=False)
    view.table.select(selected_event, view.table, [view.event_id, view.retract, view.retract_armed], api_name=False)
    on(
        view.relabel.click,
        lambda e, v, a, *f: do_relabel(services, e, v, a, *f),
        [view.event_id, view.new_verdict, me, *filters],
        [view.table, view.message],
        me,
        api_name="data_relabel",
    )
    on(
        view.retract.click,
        lambda e, armed, a, *f: do_retract(services, e, armed, a, *f),
        [view.event_id, view.retract_armed, me, *filters],
        [view.table, view.message, view.retract, view.retract_armed],
        me,
        api_name="data_retract",
    )
    on(
        view.export.click,
        lambda k, f, p, n: do_export(services, k, f, p, n),
        [view.export_kind, view.export_formats, view.include_pairs, view.no_synthetic],
        [view.export_files, view.snapshots, view.message],
        api_name="data_export",
    )
    on(
        view.quality_refresh.click,
        lambda: show_quality(services),
        [],
        [view.quality, view.quality_plot, view.quality_note],
        api_name="data_annotator_quality",
    )
    on(
        view.import_button.click,
        lambda u, how, name, fmt: do_import(services, u, how, name, fmt),
        [view.upload, view.import_as, view.import_name, view.import_format],
        view.message,
        api_name="data_import",
    )
