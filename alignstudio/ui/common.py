"""Pieces several tabs share: the sampling-settings controls and turning UserError into a warning."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import gradio as gr

from ..core.errors import UserError
from ..services import Caller, acting_as, caller_for, setting_of
from ..services.container import Services
from ..services.limits import ANY_TEXT_CHARS, check_length
from ..services.sampling.prefetch import FeedConfig
from ..services.sampling.settings import SamplingSettings
from .fields import optional_number, optional_number_box, setting_number

SAME_MODEL = "(same as A)"
DEFAULTS = SamplingSettings()


def _param_name(component, index: int) -> str:
    """API parameter names from elem_ids (`label-reason` -> `label_reason`), so the HTTP API reads well."""
    elem_id = getattr(component, "elem_id", None) or ""
    name = elem_id.replace("-", "_")
    return name if name.isidentifier() else f"value_{index}"


def signed_in(request) -> str | None:
    """The account a request is signed in as (None without accounts, or with no request)."""
    return getattr(request, "username", None)


def acting_for(request):
    """Run as the caller of this request (for the few functions Gradio calls that `on` cannot wrap)."""
    return acting_as(caller_for(signed_in(request)))


def _reader(inputs: list, identity=None):
    """(handler arguments ending with the request) -> (values, caller): every text box capped and null read as
    empty, and with accounts the logged-in user in place of the `identity` input."""
    inputs = list(inputs)
    index = next((i for i, c in enumerate(inputs) if c is identity), None) if identity is not None else None
    text_inputs = [i for i, c in enumerate(inputs) if isinstance(c, gr.Textbox)]

    def values_of(args) -> tuple[list, Caller]:
        *values, request = args
        for i in text_inputs:  # a browser always sends text; an API client may send null for "nothing typed"
            if values[i] is None:
                values[i] = ""
            elif isinstance(values[i], str):  # the services cap each field they take; this caps every box
                check_length(values[i], f"the {inputs[i].label or 'text'} field", ANY_TEXT_CHARS)
        user = signed_in(request)
        if index is not None and user:
            values[index] = user
        return values, caller_for(user)

    return values_of


def guard(fn, inputs: list, outputs, identity=None):
    """Wrap a plain handler for Gradio.

    A UserError becomes a gr.Error (a toast in the browser, an exception for API clients) and leaves every
    output as it was. When the app runs with
    accounts, the logged-in user replaces the value of the `identity` input (the annotator box), so a label
    is attributed to whoever is logged in whatever the browser or an API client sends.
    """
    values_of = _reader(inputs, identity)

    if inspect.isgeneratorfunction(fn):  # streaming handlers stay generators for Gradio

        def wrapped(*args):
            try:
                values, caller = values_of(args)
            except UserError as exc:
                raise gr.Error(str(exc), print_exception=False) from None
            steps = fn(*values)
            while True:  # each step may run in another worker thread: act as the caller in every one
                try:
                    with acting_as(caller):
                        item = next(steps)
                except StopIteration:
                    return
                except UserError as exc:
                    raise gr.Error(str(exc), print_exception=False) from None
                yield item
    else:

        def wrapped(*args):
            try:
                values, caller = values_of(args)
                with acting_as(caller):  # the services check the caller's role (core.access)
                    return fn(*values)
            except UserError as exc:  # shown as an error toast; API clients get it as an exception
                raise gr.Error(str(exc), print_exception=False) from None

    # Gradio injects gr.Request into a positional parameter annotated with it; declare one per input + request
    params = [
        inspect.Parameter(_param_name(c, i), inspect.Parameter.POSITIONAL_OR_KEYWORD) for i, c in enumerate(inputs)
    ]
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request))
    wrapped.__signature__ = inspect.Signature(params)
    wrapped.__annotations__ = {"request": gr.Request}
    return wrapped


def on(event, fn, inputs, outputs, identity=None, **kwargs):
    """`event(guard(fn), inputs, outputs)`: the one way tabs attach handlers."""
    inputs = list(inputs or [])
    return event(guard(fn, inputs, outputs, identity), inputs, outputs, **kwargs)


@dataclass
class SamplingControls:
    prompt_set: gr.Dropdown
    model_a: gr.Dropdown
    model_b: gr.Dropdown | None
    temperature_a: gr.Number
    temperature_b: gr.Number | None
    top_p: gr.Number
    max_new_tokens: gr.Number
    seed: gr.Textbox
    system_a: gr.Textbox | None = None
    system_b: gr.Textbox | None = None
    panel: gr.Accordion | None = None  # "Sampling settings", where the model lists are

    def refresh_on(self) -> list:
        """Events after which the lists must be current: a closed accordion does not draw its children, so an
        update sent while it is closed is lost; the refresh runs again when it is opened."""
        return [self.panel.expand] if self.panel is not None else []

    def inputs(self) -> list:
        return [
            c
            for c in (
                self.prompt_set,
                self.model_a,
                self.model_b,
                self.temperature_a,
                self.temperature_b,
                self.top_p,
                self.max_new_tokens,
                self.seed,
                self.system_a,
                self.system_b,
            )
            if c is not None
        ]

    def source_inputs(self) -> list:
        """The controls whose change should bring a new sample right away."""
        return [c for c in (self.prompt_set, self.model_a, self.model_b) if c is not None]


def sampling_controls(services: Services, prefix: str, *, pair: bool) -> SamplingControls:
    models = services.generator_names()
    prompt_set = gr.Dropdown(
        services.prompt_sets.names(), value="default", label="Prompt set", elem_id=f"{prefix}-prompt-set"
    )
    with gr.Accordion("Sampling settings", open=False) as panel:
        with gr.Row():
            model_a = gr.Dropdown(
                models,
                value=services.default_model,
                label="Model A" if pair else "Model",
                elem_id=f"{prefix}-model-a",
                allow_custom_value=True,
            )
            model_b = (
                gr.Dropdown(
                    [SAME_MODEL, *models],
                    value=SAME_MODEL,
                    label="Model B",
                    elem_id=f"{prefix}-model-b",
                    allow_custom_value=True,
                )
                if pair
                else None
            )
        with gr.Row():
            temperature_a = setting_number(
                SamplingSettings,
                "temperature_a",
                f"{prefix}-temperature-a",
                **({} if pair else {"label": "Temperature", "info": None}),
            )
            temperature_b = (
                setting_number(SamplingSettings, "temperature_b", f"{prefix}-temperature-b") if pair else None
            )
            top_p = setting_number(SamplingSettings, "top_p", f"{prefix}-top-p", minimum=0.01)
            max_new_tokens = setting_number(SamplingSettings, "max_new_tokens", f"{prefix}-max-new-tokens")
            seed = optional_number_box("Seed", "empty = random", f"{prefix}-seed")
        system_a = system_b = None
        if pair:  # synthetic pairs: the same model under two system prompts (recorded with each response);
            # value="" makes them optional for API clients, which may leave them out
            with gr.Row():
                system_a = gr.Textbox(
                    DEFAULTS.system_a,
                    label=setting_of(SamplingSettings, "system_a").title,
                    lines=2,
                    placeholder="e.g. Answer helpfully, accurately and concisely.",
                    elem_id=f"{prefix}-system-a",
                )
                system_b = gr.Textbox(
                    DEFAULTS.system_b,
                    label=setting_of(SamplingSettings, "system_b").title,
                    lines=2,
                    placeholder="e.g. Answer vaguely and avoid specifics.",
                    elem_id=f"{prefix}-system-b",
                )
    return SamplingControls(
        prompt_set,
        model_a,
        model_b,
        temperature_a,
        temperature_b,
        top_p,
        max_new_tokens,
        seed,
        system_a,
        system_b,
        panel,
    )


def sampling_lists(services: Services, controls: SamplingControls) -> tuple:
    """The prompt sets and models as they are now, for `controls` (its source_inputs): a set imported or a model
    trained since the page loaded is offered at once. Choices only, so each choice stays as it is: echoing the
    values sent when the tab opened would undo a set or model picked before this answer arrives."""
    models = services.generator_names()
    updates = [gr.update(choices=services.prompt_sets.names()), gr.update(choices=models)]
    if controls.model_b is not None:
        updates.append(gr.update(choices=[SAME_MODEL, *models]))
    return tuple(updates)


def feed_config(mode: str, *values) -> FeedConfig:
    """FeedConfig from the values of SamplingControls.inputs(), in that order."""
    if mode == "pair":
        (
            prompt_set,
            model_a,
            model_b,
            temperature_a,
            temperature_b,
            top_p,
            max_new_tokens,
            seed,
            system_a,
            system_b,
        ) = values
    else:
        prompt_set, model_a, temperature_a, top_p, max_new_tokens, seed = values
        model_b, temperature_b, system_a, system_b = None, DEFAULTS.temperature_b, "", ""
    if top_p is None or max_new_tokens is None or temperature_a is None or temperature_b is None:
        raise UserError("fill in every sampling setting")
    settings = SamplingSettings(
        temperature_a=float(temperature_a),
        temperature_b=float(temperature_b),
        top_p=float(top_p),
        max_new_tokens=int(max_new_tokens),
        seed=optional_number(seed, "seed", whole=True),
        system_a=(system_a or "").strip(),
        system_b=(system_b or "").strip(),
    )
    return FeedConfig(prompt_set, model_a, None if model_b in (None, "", SAME_MODEL) else model_b, settings, mode)


def count_line(services: Services, annotator: str, kind: str) -> str:
    done = (services.labeling if kind == "preference" else services.feedback).count(annotator)
    noun = "labels" if kind == "preference" else "ratings"
    return f"**{done}** {noun} by {annotator.strip() or 'anonymous'}"


def with_progress(fn, inputs: list, outputs: list):
    """A Gradio handler with a progress bar: UserError becomes a warning and leaves every output as it was.
    (`common.guard` declares no gr.Progress parameter, so long jobs use this one.)"""
    n_out = len(outputs)
    values_of = _reader(inputs)

    def wrapped(*args):
        *args, progress = args  # Gradio passes the request and its Progress tracker (see the signature)
        try:
            values, caller = values_of(args)
            with acting_as(caller):
                return fn(*values, progress=lambda fraction, desc="": progress(fraction, desc=desc))
        except UserError as exc:
            gr.Warning(str(exc))
            skipped = tuple(gr.skip() for _ in range(n_out))
            return skipped[0] if n_out == 1 else skipped

    params = [inspect.Parameter(f"value_{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD) for i in range(len(inputs))]
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request))
    params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    wrapped.__signature__ = inspect.Signature(params)
    wrapped.__annotations__ = {"request": gr.Request}
    return wrapped
