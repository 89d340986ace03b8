"""Evaluate tab: the judge (with the report cards of the judges measured against people), a model against a
baseline, saved reports; the judge sections below (bulk labeling, agreement, budgets) are `evaluate_judges`.

Layout in `build`, plain handlers (values in, values out; testable without a browser), events in `wire`.
An evaluation streams its progress into the summary (stage, share done, time left) and ends there with the
report, or with the refusal and how to fix it in the app, so nothing important is only a passing toast.
The API key lives only in its password field: handlers pass it to the judge's SDK client and never return,
store, log or put it in state.
"""

from __future__ import annotations

import contextvars
import json
import threading
import time
from dataclasses import dataclass

import gradio as gr

from ..core.errors import UserError
from ..services import setting_of
from ..services.container import Services
from ..services.evaluation import EvalReport, EvalSettings, pathology_table, samples_table, summary_markdown
from ..services.evaluation.render import PATHOLOGY_COLUMNS, SAMPLE_COLUMNS, progress_line
from ..services.judges.config import JudgeConfig
from ..services.judges.endpoints import names as endpoint_names
from ..services.judges.prompt import DEFAULT_CRITERIA
from . import evaluate_judges as judges
from .common import on
from .evaluate_judges import agreement as agreement
from .evaluate_judges import empty_table
from .evaluate_judges import judge_pairs_in_store as judge_pairs_in_store
from .evaluate_judges import request_budgets as request_budgets
from .fields import optional_number, optional_number_box, setting_number

JUDGE_CHOICES = [
    ("best available (trained reward model, else the configured server)", "auto"),
    ("reward model trained from your labels (offline)", "reward"),
    ("trained DPO policy's implicit reward (offline)", "implicit"),
    ("rule-based (smoke tests)", "rules"),
    ("local model prompted as a judge (no signal at 135M)", "local"),
    ("OpenAI / OpenAI-compatible (vLLM, llama.cpp, Ollama)", "openai"),
    ("Anthropic", "anthropic"),
]
SAMPLE_ROWS = 50
DEFAULT_EVAL = EvalSettings()
PROGRESS_EVERY_S = 1.0  # how often a running evaluation's line in the summary is redrawn


@dataclass
class EvaluateView:
    judge_kind: gr.Dropdown
    judge_model: gr.Textbox
    judge_base_url: gr.Textbox
    judge_key: gr.Textbox
    criteria: gr.Textbox
    force_judge: gr.Checkbox
    model: gr.Dropdown
    baseline: gr.Dropdown
    prompt_set: gr.Dropdown
    limit: gr.Number
    max_new_tokens: gr.Number
    seed: gr.Textbox
    perplexity: gr.Checkbox
    run: gr.Button
    summary: gr.Markdown
    pathologies: gr.Dataframe
    samples: gr.Dataframe
    reports: gr.Dropdown
    show_report: gr.Button
    report_json: gr.Code
    cards: gr.Dataframe
    store_judging: judges.StoreJudgingView

    def __getattr__(self, name: str):  # the judge sections' handles (view.scope, view.agreement, ...)
        if name == "store_judging":
            raise AttributeError(name)
        return getattr(self.store_judging, name)

    def judge_inputs(self) -> list:
        return [self.judge_kind, self.judge_model, self.judge_base_url, self.judge_key, self.criteria, self.force_judge]

    def report_outputs(self) -> list:
        return [self.summary, self.pathologies, self.samples, self.report_json]


def _report_names(services: Services) -> list[str]:
    return services.evaluation.report_names()


def _judge(name: str):
    return setting_of(JudgeConfig, name)


def build(services: Services) -> EvaluateView:
    models = services.model_names()
    newest = services.newest_model()
    gr.Markdown("### Judge")
    with gr.Row():
        judge_kind = gr.Dropdown(
            JUDGE_CHOICES, value=_judge("kind").start, label=_judge("kind").title, elem_id="eval-judge-kind"
        )
        judge_model = gr.Textbox(
            label=_judge("model").title,
            elem_id="eval-judge-model",
            placeholder="local: the app's model (default) or a name; remote: model id",
        )
        # configured endpoints get the server's keys; a URL typed here gets only the key typed beside it
        judge_base_url = gr.Dropdown(
            ["", *endpoint_names()],
            value="",
            allow_custom_value=True,
            label=_judge("base_url").title,
            elem_id="eval-judge-base-url",
        )
        judge_key = gr.Textbox(label=_judge("api_key").title, type="password", elem_id="eval-judge-key")
    criteria = gr.Textbox("\n".join(DEFAULT_CRITERIA), lines=3, label=_judge("criteria").title, elem_id="eval-criteria")
    force_judge = gr.Checkbox(_judge("force").default, label=_judge("force").title, elem_id="eval-force-judge")
    cards = judges.build_cards()

    gr.Markdown("### Evaluate a model against a baseline")
    with gr.Row():
        model = gr.Dropdown(
            models,
            value=newest,
            label="Model (name, version or run folder)",
            allow_custom_value=True,
            elem_id="eval-model",
        )
        baseline = gr.Dropdown(
            models, value=services.default_model, label="Baseline", allow_custom_value=True, elem_id="eval-baseline"
        )
        names = services.prompt_sets.names()
        prompt_set = gr.Dropdown(
            names, value="eval" if "eval" in names else names[0], label="Held-out prompt set", elem_id="eval-prompt-set"
        )
    with gr.Row():
        limit = setting_number(EvalSettings, "limit", "eval-limit", minimum=0)  # an emptied box sends 0
        max_new_tokens = setting_number(EvalSettings, "max_new_tokens", "eval-max-new-tokens")
        seed = optional_number_box(setting_of(EvalSettings, "seed").title, str(DEFAULT_EVAL.seed), "eval-seed")
        perplexity = gr.Checkbox(
            DEFAULT_EVAL.perplexity, label=setting_of(EvalSettings, "perplexity").title, elem_id="eval-perplexity"
        )
    run = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
    summary = gr.Markdown(elem_id="eval-summary")
    pathologies = gr.Dataframe(
        empty_table(PATHOLOGY_COLUMNS), interactive=False, label="Pathologies (seed checks)", elem_id="eval-pathologies"
    )
    samples = gr.Dataframe(
        empty_table(SAMPLE_COLUMNS), interactive=False, wrap=True, label="Answers side by side", elem_id="eval-samples"
    )
    with gr.Row():
        reports = gr.Dropdown(_report_names(services), label="Saved reports", elem_id="eval-reports", scale=3)
        show_report = gr.Button("Show report", elem_id="eval-show-report", scale=1)
    with gr.Accordion("Full report (JSON)", open=False):
        report_json = gr.Code(language="json", elem_id="eval-report-json")

    store_judging = judges.build_store_judging()
    return EvaluateView(
        judge_kind,
        judge_model,
        judge_base_url,
        judge_key,
        criteria,
        force_judge,
        model,
        baseline,
        prompt_set,
        limit,
        max_new_tokens,
        seed,
        perplexity,
        run,
        summary,
        pathologies,
        samples,
        reports,
        show_report,
        report_json,
        cards,
        store_judging,
    )


# -- handlers -------------------------------------------------------------------------------------------------


_optional_int = judges.optional_count


def judge_config(
    kind: str, judge_model: str, base_url: str, api_key: str, criteria: str, force_judge: bool = False, concurrency=None
) -> JudgeConfig:
    """The JudgeConfig the judge controls describe (and, for bulk judging, its concurrency)."""
    count = _optional_int(concurrency, "concurrency")
    return JudgeConfig.from_form(
        kind, judge_model, base_url, api_key, criteria, force_judge, **({"concurrency": count} if count else {})
    )


def eval_settings(limit, max_new_tokens, seed, perplexity: bool) -> EvalSettings:
    """The EvalSettings the evaluation controls describe (empty fields: the defaults)."""
    return EvalSettings(
        max_new_tokens=int(max_new_tokens or DEFAULT_EVAL.max_new_tokens),
        seed=optional_number(seed, "seed", whole=True) or DEFAULT_EVAL.seed,
        limit=_optional_int(limit, "the number of prompts"),
        perplexity=bool(perplexity),
    )


def _report_view(report: EvalReport) -> tuple:
    return (
        summary_markdown(report),
        pathology_table(report),
        samples_table(report, SAMPLE_ROWS),
        json.dumps(report.to_dict(), ensure_ascii=False, indent=2),
    )


def run_evaluation(
    services: Services,
    model: str,
    baseline: str,
    prompt_set: str,
    settings: EvalSettings,
    judge: JudgeConfig,
    progress=None,
) -> tuple:
    """Generate, judge both orders, save the report; returns (summary, pathologies, samples, json, report name)."""
    report, path = services.evaluation.evaluate(model, baseline, prompt_set, settings, judge, progress)
    return (*_report_view(report), path.name)


def show_report(services: Services, name: str) -> tuple:
    return _report_view(services.evaluation.report(name))


def refusal_view(error: UserError) -> tuple:
    """A refused evaluation in the result area, worded for the app, with empty (but headed) tables."""
    return (
        judges.refusal_markdown(error),
        empty_table(PATHOLOGY_COLUMNS),
        empty_table(SAMPLE_COLUMNS),
        "",
    )


def streamed_evaluation(job, every_s: float = PROGRESS_EVERY_S):
    """Run `job(progress)` (an evaluation returning its report view) on a thread in the caller's context and
    yield the summary's running line until it ends; then the report view, or the refusal (`refusal_view`).
    Each yielded value is (summary, pathologies, samples, json, report name or None)."""
    state = {"fraction": 0.0, "desc": "checking the judge", "result": None, "error": None}
    started = time.monotonic()

    def progress(fraction: float, desc: str = "") -> None:
        state["fraction"], state["desc"] = fraction, desc or state["desc"]

    def target() -> None:
        try:
            state["result"] = job(progress)
        except BaseException as exc:  # handed to the handler's thread below
            state["error"] = exc

    worker = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(every_s)
        if worker.is_alive():
            line = progress_line(state["fraction"], state["desc"], time.monotonic() - started)
            yield (line, gr.skip(), gr.skip(), gr.skip(), None)
    if isinstance(state["error"], UserError):
        yield (*refusal_view(state["error"]), None)
    elif state["error"] is not None:
        raise state["error"]
    else:
        yield state["result"]


# -- events ---------------------------------------------------------------------------------------------------


def lists(
    services: Services,
    model: str | None,
    baseline: str | None,
    prompt_set: str | None,
    report: str | None,
    fresh: bool = False,
) -> tuple:
    """The models (trained ones included), prompt sets and saved reports as they are now. A `fresh` page
    (page load) also gets the newest trained model chosen; opening the tab changes only the choices, so a value
    set a moment earlier (or by the person) is never overwritten with an older one."""
    models = services.model_names()
    sets = services.prompt_sets.names()
    reports = _report_names(services)
    if fresh:
        picked = gr.update(choices=models, value=services.newest_model())
        base = gr.update(choices=models, value=baseline or services.default_model)
    else:
        picked, base = gr.update(choices=models), gr.update(choices=models)
    chosen_set = (
        gr.update(choices=sets)
        if prompt_set in sets
        else gr.update(choices=sets, value="eval" if "eval" in sets else (sets[0] if sets else None))
    )
    return picked, base, chosen_set, gr.update(choices=reports)


def wire(view: EvaluateView, services: Services, tab: gr.Tab | None = None, demo: gr.Blocks | None = None) -> None:
    judge = view.judge_inputs()
    eval_inputs = [
        view.model,
        view.baseline,
        view.prompt_set,
        view.limit,
        view.max_new_tokens,
        view.seed,
        view.perplexity,
        *judge,
    ]
    eval_outputs = [*view.report_outputs(), view.reports]

    def evaluation(model, baseline, prompt_set, limit, max_new_tokens, seed, perplexity, *judge_values):
        def job(progress):
            return run_evaluation(
                services,
                model,
                baseline,
                prompt_set,
                eval_settings(limit, max_new_tokens, seed, perplexity),
                judge_config(*judge_values),
                progress=progress,
            )

        for *shown, name in streamed_evaluation(job):
            reports = gr.update(choices=_report_names(services), value=name) if name else gr.skip()
            yield (*shown, reports)

    # the running line in the summary is the progress: Gradio's own timer would read "elapsed / average of
    # earlier runs", which a quick refusal makes absurd ("100.7/1.9s")
    on(
        view.run.click,
        evaluation,
        eval_inputs,
        eval_outputs,
        api_name="evaluate",
        concurrency_limit=1,
        show_progress="hidden",
    )
    on(
        view.show_report.click,
        lambda name: show_report(services, name),
        [view.reports],
        view.report_outputs(),
        api_name="evaluation_report",
    )
    judges.wire(view.store_judging, view.cards, services, judge, judge_config)
    listed = [view.model, view.baseline, view.prompt_set, view.reports]
    if demo is not None:  # a fresh page offers the newest trained model, as a restarted app would
        on(
            demo.load,
            lambda b, p, r: lists(services, None, b, p, r, fresh=True),
            [view.baseline, view.prompt_set, view.reports],
            listed,
            api_name=False,
            show_progress="hidden",
        )
    if tab is not None:
        on(
            tab.select,
            lambda *v: (*judges.judges_now(services), *lists(services, *v)),
            listed,
            [view.agreement, view.cards, *listed],
            api_name=False,
            show_progress="hidden",
        )
