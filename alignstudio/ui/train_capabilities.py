"""The Train tab's capability check: lm-evaluation-harness tasks scored on a finished run's model and on its base,
in the background (`services.evaluation.capabilities`); its progress and result are read from the run folder on
the tab's timer, with the run's live view. Without lm-eval the button says how to install it."""

from __future__ import annotations

import gradio as gr

from ..services.container import Services
from ..services.evaluation import capabilities
from .fields import setting_control


def capabilities_button_label() -> str:
    if capabilities.available():
        return "Check capabilities (lm-eval, base vs trained)"
    return f"Capability checks need lm-eval: {capabilities.LM_EVAL_INSTALL}"


def capability_controls() -> dict:
    """The tasks, how many questions, the button and the result."""
    fields = capabilities.form_settings()
    with gr.Row():
        c = {
            "cap_tasks": setting_control(fields["tasks"], "train-capabilities-tasks", scale=3),
            "cap_limit": setting_control(fields["limit"], "train-capabilities-limit", scale=1),
            # clickable whenever lm-eval is installed: the service refuses a run that is not a finished policy run
            "cap_start": gr.Button(
                capabilities_button_label(), scale=2, elem_id="train-capabilities", interactive=capabilities.available()
            ),
        }
    c["cap_result"] = gr.Markdown(elem_id="train-capabilities-result")
    return c


def check_capabilities(services: Services, name: str, tasks: str, limit) -> str:
    """The button: start the check of the selected run (refused with the reason, nothing started)."""
    settings = capabilities.settings_from_form({"tasks": tasks, "limit": limit})
    return capabilities.start(services, name, settings)


def capabilities_markdown(services: Services, name: str | None) -> str:
    """The selected run's latest check: running (what it does now), its table and verdict, or its error."""
    return capabilities.markdown(capabilities.latest(services, name))
