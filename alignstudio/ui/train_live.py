"""The Train tab's live sessions (issue 37): a session's curve across bursts, the held-out loss and accuracy of the
live policy (the version each burst left it at) and of each burst's result (kept or not), read from the session's
folder on a timer of its own. Built and wired by `panel`, which ui/train.py calls inside its layout.
"""

from __future__ import annotations

import math

import gradio as gr
import pandas as pd

from ..services.container import Services
from .common import on

POLL_S = 5.0
POLICY, TRIED = "live policy", "each burst's result"
SERIES = (POLICY, TRIED)
COLORS = {POLICY: "#1f77b4", TRIED: "#ff7f0e"}
TABLE_HEADERS = ["burst", "outcome", "version", "held-out loss", "held-out accuracy", "labels trained on"]


def _placeholder() -> pd.DataFrame:
    """Every series named (Gradio fixes a LinePlot's colour domain when it first draws it), none drawn."""
    return pd.DataFrame({"burst": [math.nan] * len(SERIES), "value": [math.nan] * len(SERIES), "series": SERIES})


def curve_frames(services: Services, name: str | None) -> tuple[pd.DataFrame, pd.DataFrame, list[list]]:
    """(loss frame, accuracy frame, table rows) of a session's measured bursts. The policy's line takes a kept
    burst's result and stays at the held-out figure before a burst that was not kept."""
    if not name:
        return _placeholder(), _placeholder(), []
    loss, accuracy, table = [], [], []
    for point in services.live.curve(name):
        kept = point.outcome == "kept"
        policy_loss = point.heldout_loss if kept else point.before_loss
        policy_accuracy = point.heldout_accuracy if kept else point.before_accuracy
        loss += [(point.burst, policy_loss, POLICY), (point.burst, point.heldout_loss, TRIED)]
        accuracy += [(point.burst, policy_accuracy, POLICY), (point.burst, point.heldout_accuracy, TRIED)]
        table.append(
            [
                point.burst,
                point.outcome,
                f"v{point.version}" if point.version is not None else "",
                round(point.heldout_loss, 4),
                None if point.heldout_accuracy is None else round(point.heldout_accuracy, 3),
                point.labels,
            ]
        )

    def frame(rows):
        found = pd.DataFrame(rows, columns=["burst", "value", "series"]).astype({"value": float})
        return pd.concat([found, _placeholder()], ignore_index=True) if rows else _placeholder()

    return frame(loss), frame(accuracy), table


def sessions(services: Services, current: str | None):
    """The sessions with a version, newest name last; the one shown stays chosen."""
    names = services.live.sessions_with_versions()
    value = current if current in names else (names[-1] if names else None)
    return gr.update(choices=names, value=value)


def panel(services: Services) -> None:
    """The accordion, its timer and its events (inside the Train tab's layout)."""
    with gr.Accordion("Live sessions: held-out loss and accuracy across bursts", open=False):
        session = gr.Dropdown([], label="Live session", elem_id="train-live-session", allow_custom_value=False)
        with gr.Row():
            loss = gr.LinePlot(
                _placeholder(),
                x="burst",
                y="value",
                color="series",
                color_map=COLORS,
                title="Held-out preference loss across bursts",
                x_title="burst",
                y_title="loss",
                height=220,
                elem_id="train-live-loss",
            )
            accuracy = gr.LinePlot(
                _placeholder(),
                x="burst",
                y="value",
                color="series",
                color_map=COLORS,
                title="Held-out accuracy across bursts",
                x_title="burst",
                y_title="accuracy",
                y_lim=[0, 1],
                height=220,
                elem_id="train-live-accuracy",
            )
        table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, elem_id="train-live-bursts")
    timer = gr.Timer(POLL_S)
    hidden = dict(api_name=False, show_progress="hidden", concurrency_limit=None)
    on(timer.tick, lambda name: sessions(services, name), [session], [session], **hidden)
    on(session.change, lambda name: curve_frames(services, name), [session], [loss, accuracy, table], **hidden)
    on(timer.tick, lambda name: curve_frames(services, name), [session], [loss, accuracy, table], **hidden)
