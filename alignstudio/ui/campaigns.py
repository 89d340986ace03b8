"""The Data tab's campaign panel: annotators per pair (overlap) for the queue or a prompt set, what the consensus
does with a disagreement, and each campaign's progress (pairs complete, in progress, pending).

Layout in `build`, plain handlers, events in `wire`. Saving is the admins' (the service checks it); everyone may
read the progress, which counts pairs and names no annotator.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..services.campaigns import QUEUE
from ..services.container import Services
from .common import on

SPLIT_CHOICES = [
    ("drop: keep only the pairs all their annotators agree on", "drop"),
    ("weight: keep the majority, with its agreement as the pair's weight", "weight"),
]
PROGRESS_COLUMNS = ["campaign", "annotators per pair", "disagreements", "complete", "in progress", "pending"]


@dataclass
class CampaignView:
    campaign: gr.Dropdown
    overlap: gr.Number
    split: gr.Radio
    save: gr.Button
    refresh: gr.Button
    message: gr.Markdown
    progress: gr.Dataframe


def build(services: Services) -> CampaignView:
    with gr.Accordion("Campaigns: annotators per pair and progress", open=False):
        with gr.Row():
            campaign = gr.Dropdown(
                campaign_names(services), value=QUEUE, label="Campaign (a prompt set, or the queue)",
                elem_id="campaign-name",
            )  # fmt: skip
            overlap = gr.Number(1, precision=0, minimum=1, label="Annotators per pair", elem_id="campaign-overlap")
        split = gr.Radio(SPLIT_CHOICES, value="drop", label="Disagreements", elem_id="campaign-split")
        with gr.Row():
            save = gr.Button("Save", size="sm", elem_id="campaign-save")
            refresh = gr.Button("Show progress", size="sm", elem_id="campaign-refresh")
        message = gr.Markdown(elem_id="campaign-message")
        progress = gr.Dataframe(interactive=False, elem_id="campaign-progress")
    return CampaignView(campaign, overlap, split, save, refresh, message, progress)


def campaign_names(services: Services) -> list[str]:
    return [QUEUE, *services.prompt_sets.names()]


def progress_table(services: Services) -> pd.DataFrame:
    rows = [
        [p.campaign, p.overlap, p.split, p.complete, p.in_progress, p.pending]
        for p in services.labeling.campaigns.every_progress()
    ]
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS)


def show(services: Services, campaign: str) -> tuple:
    """A campaign's settings in the form, and its progress line."""
    settings = services.labeling.campaigns.settings(campaign)
    return settings.overlap, settings.split, services.labeling.campaigns.progress(campaign).line()


def save(services: Services, campaign: str, overlap, split: str) -> tuple:
    settings = services.labeling.campaigns.configure(campaign, overlap, split)
    line = services.labeling.campaigns.progress(settings.campaign).line()
    return f"Saved: **{settings.campaign}**, {line} (disagreements: {settings.split})", progress_table(services)


def wire(view: CampaignView, services: Services) -> None:
    on(
        view.campaign.change,
        lambda c: show(services, c),
        [view.campaign],
        [view.overlap, view.split, view.message],
        api_name="campaign_settings",
    )
    on(
        view.save.click,
        lambda c, n, s: save(services, c, n, s),
        [view.campaign, view.overlap, view.split],
        [view.message, view.progress],
        api_name="campaign_save",
    )
    on(
        view.refresh.click,
        lambda: (gr.update(choices=campaign_names(services)), progress_table(services)),
        [],
        [view.campaign, view.progress],
        api_name="campaign_progress",
    )
