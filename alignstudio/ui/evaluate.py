"""Evaluate tab: a model against a baseline with an AI judge, saved reports, and the Judges section (bulk
labeling of the store's pairs, agreement with the humans).

Layout in `build`, plain handlers (values in, values out; testable without a browser), events in `wire`.
The API key lives only in its password field: handlers pass it to the judge's SDK client and never return,
store, log or put it in state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from ..core.errors import UserError
from ..services.container import Services
from ..services.evaluation import (EvalSettings, evaluate_and_save, list_reports, load_report, pathology_table,
                                   samples_table, summary_markdown)
from ..services.judges.agreement import agreement_table
from ..services.judges.bulk import SCOPES, judge_store
from ..services.judges.endpoints import names as endpoint_names
from ..services.judges.prompt import DEFAULT_CRITERIA
from ..services.judges.protocol import JudgeCache
from ..services.judges.trust import judge_from_controls
from .common import on, with_progress
from .fields import optional_number, optional_number_box

JUDGE_CHOICES = [("best available (trained reward model, else the configured server)", "auto"),
                 ("reward model trained from your labels (offline)", "reward"),
                 ("trained DPO policy's implicit reward (offline)", "implicit"),
                 ("rule-based (smoke tests)", "rules"), ("local model prompted as a judge (no signal at 135M)", "local"),
                 ("OpenAI / OpenAI-compatible (vLLM, llama.cpp, Ollama)", "openai"), ("Anthropic", "anthropic")]
SCOPE_CHOICES = [(f"{name}: {text}", name) for name, text in SCOPES.items()]
SAMPLE_ROWS = 50
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

    def judge_inputs(self) -> list:
        return [self.judge_kind, self.judge_model, self.judge_base_url, self.judge_key, self.criteria,
                self.force_judge]

    def report_outputs(self) -> list:
        return [self.summary, self.pathologies, self.samples, self.report_json]


def _report_names(services: Services) -> list[str]:
    return [p.name for p in list_reports(services.workspace)]


def build(services: Services) -> EvaluateView:
    models = services.registry.names()
    newest = services.registry.newest_trained() or services.default_model
    gr.Markdown("### Judge")
    with gr.Row():
        judge_kind = gr.Dropdown(JUDGE_CHOICES, value="auto", label="Judge backend", elem_id="eval-judge-kind")
        judge_model = gr.Textbox(label="Judge model", elem_id="eval-judge-model",
                                 placeholder="local: the app's model (default) or a name; remote: model id")
        # configured endpoints get the server's keys; a URL typed here gets only the key typed beside it
        judge_base_url = gr.Dropdown(["", *endpoint_names()], value="", allow_custom_value=True,
                                     label="Server: a configured endpoint, or a base URL (http://HOST:PORT/v1)",
                                     elem_id="eval-judge-base-url")
        judge_key = gr.Textbox(label="API key for a typed URL (never stored)", type="password",
                               elem_id="eval-judge-key")
    criteria = gr.Textbox("\n".join(DEFAULT_CRITERIA), lines=3, label="Judge criteria (one per line)",
                          elem_id="eval-criteria")
    force_judge = gr.Checkbox(False, label="Use the judge even if it is at chance against people (reports say so)",
                              elem_id="eval-force-judge")

    gr.Markdown("### Evaluate a model against a baseline")
    with gr.Row():
        model = gr.Dropdown(models, value=newest, label="Model (name, version or run folder)",
                            allow_custom_value=True, elem_id="eval-model")
        baseline = gr.Dropdown(models, value=services.default_model, label="Baseline", allow_custom_value=True,
                               elem_id="eval-baseline")
        names = services.prompt_sets.names()
        prompt_set = gr.Dropdown(names, value="eval" if "eval" in names else names[0], label="Held-out prompt set",
                                 elem_id="eval-prompt-set")
    with gr.Row():
        limit = gr.Number(20, label="Prompts (empty = all)", precision=0, minimum=0, elem_id="eval-limit")
        max_new_tokens = gr.Number(128, label="Max new tokens", precision=0, minimum=1, maximum=4096,
                                   elem_id="eval-max-new-tokens")
        seed = optional_number_box("Seed (empty = 0)", "0", "eval-seed")
        perplexity = gr.Checkbox(True, label="Alignment-tax check (perplexity on held-out text)",
                                 elem_id="eval-perplexity")
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
        require_kappa = gr.Checkbox(False, label="Require agreement with humans before bulk labeling",
                                    elem_id="eval-require-kappa")
        min_kappa = gr.Number(0.4, label="Minimum Cohen's kappa", minimum=-1, maximum=1, step=0.05,
                              elem_id="eval-min-kappa")
        bulk_limit = optional_number_box("At most N pairs (empty = all)", "all", "eval-bulk-limit")
        concurrency = gr.Number(4, label="Remote requests in flight", precision=0, minimum=1, maximum=64,
                                elem_id="eval-concurrency")
    bulk_run = gr.Button("Judge pairs", variant="primary", elem_id="eval-bulk-run")
    bulk_status = gr.Markdown(elem_id="eval-bulk-status")
    gr.Markdown("### Agreement with human labels")
    agreement = gr.Dataframe(interactive=False, elem_id="eval-agreement")
    agreement_refresh = gr.Button("Refresh", size="sm", elem_id="eval-agreement-refresh")
    agreement_timer = gr.Timer(AGREEMENT_REFRESH_S)  # live: new human and judge labels show up by themselves
    return EvaluateView(judge_kind, judge_model, judge_base_url, judge_key, criteria, force_judge, model, baseline, prompt_set,
                        limit, max_new_tokens, seed, perplexity, run, summary, pathologies, samples, reports,
                        show_report, report_json, scope, require_kappa, min_kappa, bulk_limit, concurrency, bulk_run,
                        bulk_status, agreement, agreement_refresh, agreement_timer)


# -- handlers -------------------------------------------------------------------------------------------------


def _optional_int(value, name: str) -> int | None:
    """An optional count: empty (or 0, as an emptied number box sends it) means no limit."""
    number = optional_number(value, name, whole=True)
    if not number:
        return None
    if number < 1:
        raise UserError(f"{name} must be at least 1")
    return number


def build_judge(services: Services, kind: str, judge_model: str, base_url: str, api_key: str, criteria: str):
    """The judge the controls describe (`judges.trust.judge_from_controls`)."""
    return judge_from_controls(kind, judge_model, base_url, api_key, criteria, store=services.store,
                               generators=services.generators, default_model=services.default_model)


def _report_view(report: dict) -> tuple:
    return (summary_markdown(report), pathology_table(report), samples_table(report, SAMPLE_ROWS),
            json.dumps(report, ensure_ascii=False, indent=2))


def run_evaluation(services: Services, model: str, baseline: str, prompt_set: str, limit, max_new_tokens, seed,
                   perplexity: bool, kind: str, judge_model: str, base_url: str, api_key: str, criteria: str,
                   force_judge: bool = False, progress=None) -> tuple:
    """Generate, judge both orders, save the report; returns (summary, pathologies, samples, json, report name)."""
    if not model or not baseline:
        raise UserError("choose a model and a baseline")
    settings = EvalSettings(max_new_tokens=int(max_new_tokens or 128),
                            seed=optional_number(seed, "seed", whole=True) or 0,
                            limit=_optional_int(limit, "the number of prompts"), perplexity=bool(perplexity))
    prompts = services.prompt_sets.load(prompt_set)
    judge = build_judge(services, kind, judge_model, base_url, api_key, criteria)
    report, path = evaluate_and_save(services.workspace, services.store, services.generators, prompts, model,
                                     baseline, judge, settings=settings, force_judge=bool(force_judge),
                                     prompts_source=f"prompt set {prompt_set}", progress=progress)
    return (*_report_view(report), path.name)


def show_report(services: Services, name: str) -> tuple:
    if not name:
        raise UserError("choose a saved report")
    path = Path(services.workspace.root) / "evals" / Path(name).name
    if not path.is_file():
        raise UserError(f"report {name} is gone")
    return _report_view(load_report(path))


def agreement(services: Services) -> pd.DataFrame:
    return agreement_table(services.store, JudgeCache.for_workspace(services.workspace))


def judge_pairs_in_store(services: Services, scope: str, require_kappa: bool, min_kappa, limit, concurrency,
                         kind: str, judge_model: str, base_url: str, api_key: str, criteria: str,
                         force_judge: bool = False, progress=None) -> tuple:
    """Judge the store's pairs in `scope`, record judge:NAME events; returns (status, agreement table)."""
    judge = build_judge(services, kind, judge_model, base_url, api_key, criteria)
    calls = (lambda done, total: progress(done / total if total else 1.0, f"judging {done}/{total}")) \
        if progress else None
    result = judge_store(services.store, judge, cache=JudgeCache.for_workspace(services.workspace), scope=scope,
                         min_kappa=float(min_kappa or 0.0) if require_kappa else None,
                         limit=_optional_int(limit, "the number of pairs"),
                         concurrency=_optional_int(concurrency, "concurrency") or 4, progress=calls,
                         force=bool(force_judge))
    s = result.summary()
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    cost = f", ${s['cost_usd']:.4f}" if s["cost_usd"] is not None else ""
    status = (f"**{judge.source}** judged {s['pairs']} pairs ({scope}): A {s['A']} · B {s['B']} · tie {s['tie']} · "
              f"no verdict {s['failed']} (parse failures {s['parse_failures']}, failed calls {s['backend_failures']})"
              f"\n\nRecorded **{s['events_written']}** events · position inconsistency "
              f"{pct(s['position_inconsistency_rate'])} · {s['usage']['calls']} calls "
              f"({s['usage']['cached']} cached), "
              f"{s['usage']['input_tokens']} in / {s['usage']['output_tokens']} out tokens{cost}")
    if s["pairs"] == 0:
        status = f"No pairs to judge in scope **{scope}**."
    if result.trust is not None:
        status = (f"**{result.trust.warning}**\n\n" if result.trust.warning else "") + status + \
            f"\n\nJudge vs people: {result.trust.line()}"
    return status, agreement(services)


# -- events ---------------------------------------------------------------------------------------------------


def lists(services: Services, model: str | None, baseline: str | None, prompt_set: str | None,
          report: str | None, fresh: bool = False) -> tuple:
    """The models (trained ones included), prompt sets and saved reports as they are now. A `fresh` page
    (page load) also gets the newest trained model chosen; opening the tab changes only the choices, so a value
    set a moment earlier (or by the person) is never overwritten with an older one."""
    models = services.registry.names()
    sets = services.prompt_sets.names()
    reports = _report_names(services)
    if fresh:
        picked = gr.update(choices=models, value=services.registry.newest_trained() or services.default_model)
        base = gr.update(choices=models, value=baseline or services.default_model)
    else:
        picked, base = gr.update(choices=models), gr.update(choices=models)
    chosen_set = gr.update(choices=sets) if prompt_set in sets else \
        gr.update(choices=sets, value="eval" if "eval" in sets else (sets[0] if sets else None))
    return picked, base, chosen_set, gr.update(choices=reports)


def wire(view: EvaluateView, services: Services, tab: gr.Tab | None = None, demo: gr.Blocks | None = None) -> None:
    judge = view.judge_inputs()
    eval_inputs = [view.model, view.baseline, view.prompt_set, view.limit, view.max_new_tokens, view.seed,
                   view.perplexity, *judge]
    eval_outputs = [*view.report_outputs(), view.reports]

    def evaluation(*values, progress):
        *report, name = run_evaluation(services, *values, progress=progress)
        return (*report, gr.update(choices=_report_names(services), value=name))

    view.run.click(with_progress(evaluation, eval_inputs, eval_outputs), eval_inputs, eval_outputs,
                   api_name="evaluate", concurrency_limit=1)
    on(view.show_report.click, lambda name: show_report(services, name), [view.reports], view.report_outputs(),
       api_name="evaluation_report")

    bulk_inputs = [view.scope, view.require_kappa, view.min_kappa, view.bulk_limit, view.concurrency, *judge]
    bulk_outputs = [view.bulk_status, view.agreement]
    view.bulk_run.click(with_progress(lambda *v, progress: judge_pairs_in_store(services, *v, progress=progress),
                                      bulk_inputs, bulk_outputs),
                        bulk_inputs, bulk_outputs, api_name="judge_store_pairs", concurrency_limit=1)
    on(view.agreement_refresh.click, lambda: agreement(services), [], view.agreement, api_name="judge_agreement")
    on(view.agreement_timer.tick, lambda: agreement(services), [], view.agreement, api_name=False,
       show_progress="hidden")
    listed = [view.model, view.baseline, view.prompt_set, view.reports]
    if demo is not None:  # a fresh page offers the newest trained model, as a restarted app would
        on(demo.load, lambda b, p, r: lists(services, None, b, p, r, fresh=True),
           [view.baseline, view.prompt_set, view.reports], listed, api_name=False, show_progress="hidden")
    if tab is not None:
        on(tab.select, lambda *v: (agreement(services), *lists(services, *v)), listed, [view.agreement, *listed],
           api_name=False, show_progress="hidden")
