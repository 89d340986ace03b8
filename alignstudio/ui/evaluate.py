"""Evaluate tab: a model against a baseline with an AI judge, saved reports, and the Judges section (bulk
labeling of the store's pairs, agreement with the humans).

Layout in `build`, plain handlers (values in, values out; testable without a browser), events in `wire`.
The API key lives only in its password field: handlers pass it to the judge's SDK client and never return,
store, log or put it in state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..core.errors import UserError
from ..services import setting_of
from ..services.container import Services
from ..services.evaluation import EvalReport, EvalSettings, pathology_table, samples_table, summary_markdown
from ..services.judges.bulk import SCOPES
from ..services.judges.config import JudgeConfig
from ..services.judges.endpoints import names as endpoint_names
from ..services.judges.prompt import DEFAULT_CRITERIA
from ..services.remote_budget import remaining
from .common import on, with_progress
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
SCOPE_CHOICES = [(f"{name}: {text}", name) for name, text in SCOPES.items()]
SAMPLE_ROWS = 50
DEFAULT_EVAL = EvalSettings()
AGREEMENT_REFRESH_S = 15.0


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
    scope: gr.Radio
    require_kappa: gr.Checkbox
    min_kappa: gr.Number
    bulk_limit: gr.Textbox
    concurrency: gr.Number
    bulk_run: gr.Button
    bulk_status: gr.Markdown
    agreement: gr.Dataframe
    agreement_refresh: gr.Button
    agreement_timer: gr.Timer
    cancel: gr.Button | None = None
    budgets: gr.Dataframe | None = None
    budgets_refresh: gr.Button | None = None

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
    pathologies = gr.Dataframe(interactive=False, label="Pathologies (seed checks)", elem_id="eval-pathologies")
    samples = gr.Dataframe(interactive=False, wrap=True, label="Answers side by side", elem_id="eval-samples")
    with gr.Row():
        reports = gr.Dropdown(_report_names(services), label="Saved reports", elem_id="eval-reports", scale=3)
        show_report = gr.Button("Show report", elem_id="eval-show-report", scale=1)
    with gr.Accordion("Full report (JSON)", open=False):
        report_json = gr.Code(language="json", elem_id="eval-report-json")

    gr.Markdown("### Judge the store's pairs")
    with gr.Row():
        scope = gr.Radio(SCOPE_CHOICES, value="unlabeled", label="Pairs", elem_id="eval-bulk-scope")
    with gr.Row():
        require_kappa = gr.Checkbox(
            False, label="Require agreement with humans before bulk labeling", elem_id="eval-require-kappa"
        )
        min_kappa = gr.Number(
            0.4, label="Minimum Cohen's kappa", minimum=-1, maximum=1, step=0.05, elem_id="eval-min-kappa"
        )
        bulk_limit = optional_number_box("At most N pairs (empty = all)", "all", "eval-bulk-limit")
        concurrency = setting_number(JudgeConfig, "concurrency", "eval-concurrency", info=None)
    with gr.Row():
        bulk_run = gr.Button("Judge pairs", variant="primary", elem_id="eval-bulk-run", scale=3)
        # stops the running evaluation or bulk judging: no remote request goes out after it
        cancel = gr.Button("Cancel the running job", elem_id="eval-cancel", scale=1)
    bulk_status = gr.Markdown(elem_id="eval-bulk-status")
    gr.Markdown("### Agreement with human labels")
    agreement = gr.Dataframe(interactive=False, elem_id="eval-agreement")
    agreement_refresh = gr.Button("Refresh", size="sm", elem_id="eval-agreement-refresh")
    agreement_timer = gr.Timer(AGREEMENT_REFRESH_S)  # live: new human and judge labels show up by themselves
    gr.Markdown("### Remote request budgets (admins)")
    budgets = gr.Dataframe(
        interactive=False, label="Requests each user has left this minute, per endpoint", elem_id="eval-budgets"
    )
    budgets_refresh = gr.Button("Show request budgets", size="sm", elem_id="eval-budgets-refresh")
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
        scope,
        require_kappa,
        min_kappa,
        bulk_limit,
        concurrency,
        bulk_run,
        bulk_status,
        agreement,
        agreement_refresh,
        agreement_timer,
        cancel,
        budgets,
        budgets_refresh,
    )


# -- handlers -------------------------------------------------------------------------------------------------


def _optional_int(value, name: str) -> int | None:
    """An optional count: empty (or 0, as an emptied number box sends it) means no limit."""
    number = optional_number(value, name, whole=True)
    if not number:
        return None
    if number < 1:
        raise UserError(f"{name} must be at least 1")
    return number


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


def agreement(services: Services) -> pd.DataFrame:
    return services.evaluation.agreement()


def request_budgets() -> pd.DataFrame:
    """Per endpoint and user, the remote requests left this minute (admins only: the service checks)."""
    return pd.DataFrame(remaining(), columns=["endpoint", "user", "limit", "left"])


def judge_pairs_in_store(
    services: Services, scope: str, require_kappa: bool, min_kappa, limit, judge: JudgeConfig, progress=None
) -> tuple:
    """Judge the store's pairs in `scope`, record judge:NAME events; returns (status, agreement table)."""
    calls = (
        (lambda done, total: progress(done / total if total else 1.0, f"judging {done}/{total}")) if progress else None
    )
    result, source = services.evaluation.judge_pairs(
        judge,
        scope,
        min_kappa=float(min_kappa or 0.0) if require_kappa else None,
        limit=_optional_int(limit, "the number of pairs"),
        progress=calls,
    )
    return result.status_markdown(source), agreement(services)


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

    def evaluation(model, baseline, prompt_set, limit, max_new_tokens, seed, perplexity, *judge_values, progress):
        *report, name = run_evaluation(
            services,
            model,
            baseline,
            prompt_set,
            eval_settings(limit, max_new_tokens, seed, perplexity),
            judge_config(*judge_values),
            progress=progress,
        )
        return (*report, gr.update(choices=_report_names(services), value=name))

    def bulk(scope, require_kappa, min_kappa, limit, concurrency, *judge_values, progress):
        return judge_pairs_in_store(
            services,
            scope,
            require_kappa,
            min_kappa,
            limit,
            judge_config(*judge_values, concurrency=concurrency),
            progress=progress,
        )

    view.run.click(
        with_progress(evaluation, eval_inputs, eval_outputs),
        eval_inputs,
        eval_outputs,
        api_name="evaluate",
        concurrency_limit=1,
    )
    on(
        view.show_report.click,
        lambda name: show_report(services, name),
        [view.reports],
        view.report_outputs(),
        api_name="evaluation_report",
    )

    bulk_inputs = [view.scope, view.require_kappa, view.min_kappa, view.bulk_limit, view.concurrency, *judge]
    bulk_outputs = [view.bulk_status, view.agreement]
    view.bulk_run.click(
        with_progress(bulk, bulk_inputs, bulk_outputs),
        bulk_inputs,
        bulk_outputs,
        api_name="judge_store_pairs",
        concurrency_limit=1,
    )
    on(view.agreement_refresh.click, lambda: agreement(services), [], view.agreement, api_name="judge_agreement")
    on(view.cancel.click, lambda: services.evaluation.cancel(), [], view.bulk_status, api_name="evaluation_cancel")
    on(view.budgets_refresh.click, request_budgets, [], view.budgets, api_name="request_budgets")
    on(
        view.agreement_timer.tick,
        lambda: agreement(services),
        [],
        view.agreement,
        api_name=False,
        show_progress="hidden",
    )
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
            lambda *v: (agreement(services), *lists(services, *v)),
            listed,
            [view.agreement, *listed],
            api_name=False,
            show_progress="hidden",
        )
