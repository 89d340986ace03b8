"""The guidelines panel of the Label and Feedback tabs, and the admins' editor.

The panel shows the guidelines version the item on screen was handed out with (the one its label records), as a
`<details>` element: open the first time an annotator is shown a version, collapsed after that (the service
remembers who has read which version), and `g` shows or hides it (shortcuts.js). Admins get a small editor under
it in the Label tab; the service refuses a save from anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

from ..services import is_admin
from ..services.container import Services
from ..services.labeling.guidelines import DEFAULT_CAMPAIGN, campaign_of
from .common import on
from .render import escape_markdown_html

# The guidelines are markdown written by an admin and shown to every annotator: rendered by markdown-it with raw
# HTML off (a tag in the text is shown as text, never run) and images off (each viewer's browser would fetch them);
# markdown-it refuses javascript:, vbscript:, file: and data: links by itself.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table").disable("image")
# long lines and code wrap or scroll inside the panel, so nothing overflows a phone's width
_CSS = """
details { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 4px 12px; }
summary { cursor: pointer; font-weight: 600; overflow-wrap: anywhere; }
.guidelines-text { overflow-wrap: anywhere; max-height: 50vh; overflow-y: auto; }
pre { overflow-x: auto; max-width: 100%; }
table { display: block; overflow-x: auto; max-width: 100%; }
"""
KEY_HINT = "[g] shows or hides them"


def render_guidelines(text: str) -> str:
    """The guidelines' markdown as HTML with no element of the author's own (see `_MARKDOWN`)."""
    return _MARKDOWN.render(text or "")


def panel_html(campaign: str, version: str, text: str, opened: bool) -> str:
    """The panel: a `<details>` whose summary names the campaign and version; `opened`: shown open."""
    where = f"for {escapeHtml(campaign)}" if campaign else "for every campaign"
    if not version:
        summary = f"Guidelines: none yet {where} · {KEY_HINT}"
        body = "<p>No guidelines were written for this campaign yet.</p>"
    else:
        summary = f"Guidelines {where} · version <code>{escapeHtml(version)}</code> · {KEY_HINT}"
        body = render_guidelines(text)
    return (
        f'<details class="guidelines-panel" data-version="{escapeHtml(version)}"{" open" if opened else ""}>'
        f'<summary>{summary}</summary><div class="guidelines-text">{body}</div></details>'
    )


@dataclass
class GuidelinesPanel:
    html: gr.HTML
    showing: gr.State  # the version the panel shows now (None before the first item)
    editor: gr.Accordion | None = None
    campaign: gr.Textbox | None = None
    text: gr.Textbox | None = None
    save: gr.Button | None = None
    status: gr.Markdown | None = None


def build(prefix: str, editor: bool = False) -> GuidelinesPanel:
    """The panel (ids `{prefix}-guidelines...`), with the admins' editor below it when `editor`."""
    html = gr.HTML(panel_html("", "", "", False), elem_id=f"{prefix}-guidelines", css_template=_CSS)
    panel = GuidelinesPanel(html, gr.State(None))
    if editor:  # shown to admins only (`wire`); the service refuses anyone else's save anyway
        with gr.Accordion("Edit the guidelines (admins)", open=False, visible=False) as panel.editor:
            panel.campaign = gr.Textbox(
                label="Campaign",
                info='a prompt set, "queue" for the labeling queue, or empty for every campaign without its own',
                elem_id=f"{prefix}-guidelines-campaign",
            )
            panel.text = gr.Textbox(label="Guidelines (markdown)", lines=8, elem_id=f"{prefix}-guidelines-text")
            panel.save = gr.Button("Save as a new version", elem_id=f"{prefix}-guidelines-save")
            panel.status = gr.Markdown(elem_id=f"{prefix}-guidelines-status")
    return panel


# -- handlers ---------------------------------------------------------------------------------------------


def _campaign(shown: dict | None) -> str:
    if not shown:
        return DEFAULT_CAMPAIGN
    return campaign_of(shown.get("prompt_set", ""), bool(shown.get("queued")))


def show(services: Services, state: dict, annotator: str, showing: str | None) -> tuple:
    """After the item on screen changed: the guidelines it was handed out with, open if this annotator has not
    been shown that version yet. Nothing changes while the version stays the same (the panel stays as the
    annotator left it) or while no item is on screen."""
    shown = state.get("shown") if state else None
    if not shown:
        return gr.skip(), gr.skip()
    version = shown.get("guidelines") or ""
    if version == showing:
        return gr.skip(), gr.skip()
    guidelines = services.labeling.guidelines
    found = guidelines.version(version) if version else None
    text = found.text if found else ""
    return panel_html(_campaign(shown), version, text, guidelines.first_read(annotator, version)), version


def editor_visible() -> dict:
    """The editor for admins only (the page's caller)."""
    return gr.update(visible=is_admin())


def editor_start(services: Services, state: dict) -> tuple[str, str]:
    """The editor opened: the campaign of the item on screen and its own current guidelines, to edit."""
    campaign = _campaign(state.get("shown") if state else None)
    current = services.labeling.guidelines.own(campaign)
    return campaign, current.text if current else ""


def save(services: Services, campaign: str, text: str, annotator: str) -> str:
    saved = services.labeling.guidelines.set(text, campaign, author=annotator)
    where = f"campaign {escape_markdown_html(saved.campaign)}" if saved.campaign else "every campaign without its own"
    return (
        f"Saved version `{saved.version}` for {where}. Items handed out from now on show it and their labels record"
        " it; labels given before keep their version."
    )


def wire(panel: GuidelinesPanel, services: Services, state: gr.State, annotator: gr.Textbox, load=None) -> None:
    """`state`: the tab's item state; `load`: the page-load event that shows the editor to admins."""
    hidden = dict(api_name=False, show_progress="hidden")
    on(
        state.change,
        lambda s, a, v: show(services, s, a, v),
        [state, annotator, panel.showing],
        [panel.html, panel.showing],
        annotator,
        **hidden,
    )
    if panel.editor is None:
        return
    if load is not None:
        on(load, editor_visible, [], panel.editor, **hidden)
    on(panel.editor.expand, lambda s: editor_start(services, s), [state], [panel.campaign, panel.text], **hidden)
    on(
        panel.save.click,
        lambda c, t, a: save(services, c, t, a),
        [panel.campaign, panel.text, annotator],
        panel.status,
        annotator,
        api_name="guidelines_save",
    )
