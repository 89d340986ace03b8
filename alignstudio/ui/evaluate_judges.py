"""The Evaluate tab's judge sections: the judges' report cards (where a judge is chosen), bulk judging of the
store's pairs, the agreement with the human labels and the remote request budgets. Layout in `build_*`, plain
handlers, events in `wire`; `ui.evaluate` composes them with the evaluation itself."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from ..core.errors import UserError
from ..services.container import Services
from ..services.judges.agreement import COLUMNS as AGREEMENT_COLUMNS
from ..services.judges.bulk import SCOPES
from ..services.judges.config import JudgeConfig
from ..services.judges.refusals import in_app_words
from ..services.judges.report_card import COLUMNS as CARD_COLUMNS
from ..services.judges.report_card import LENGTH_BIAS_MARGIN
from ..services.remote_budget import remaining
from .common import on, with_progress
from .fields import optional_number, optional_number_box, setting_number
from .render import escape_markdown_html

SCOPE_CHOICES = [(f"{name}: {text}", name) for name, text in SCOPES.items()]
AGREEMENT_REFRESH_S = 15.0
BUDGET_COLUMNS = ["endpoint", "user", "limit", "left"]


@dataclass
class StoreJudgingView:
    scope: gr.Radio
    require_kappa: gr.Checkbox
    min_kappa: gr.Number
    bulk_limit: gr.Textbox
    concurrency: gr.Number
    bulk_run: gr.Button
    cancel: gr.Button
    bulk_status: gr.Markdown
    agreement: gr.Dataframe
    agreement_refresh: gr.Button
    agreement_timer: gr.Timer
    budgets: gr.Dataframe
    budgets_refresh: gr.Button


def empty_table(columns) -> pd.DataFrame:
    """A table with its headers and no rows (an empty Dataframe otherwise shows the headers "1 | 2 | 3")."""
    return pd.DataFrame(columns=list(columns))


def build_cards() -> gr.Dataframe:
    """The report cards of the judges measured against people, beside the judge controls."""
    return gr.Dataframe(
        empty_table(CARD_COLUMNS.values()),
        interactive=False,
        wrap=True,
        label=f"Judge report cards: each judge's biases next to the people's on the same held-out pairs "
        f"(a P(longer) more than {100 * LENGTH_BIAS_MARGIN:.0f} points above the people's is flagged in every "
        "report)",
        elem_id="eval-judge-cards",
    )


def build_store_judging() -> StoreJudgingView:
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
    agreement = gr.Dataframe(empty_table(AGREEMENT_COLUMNS), interactive=False, elem_id="eval-agreement")
    agreement_refresh = gr.Button("Refresh", size="sm", elem_id="eval-agreement-refresh")
    agreement_timer = gr.Timer(AGREEMENT_REFRESH_S)  # live: new human and judge labels show up by themselves
    gr.Markdown("### Remote request budgets (admins)")
    budgets = gr.Dataframe(
        empty_table(BUDGET_COLUMNS),
        interactive=False,
        label="Requests each user has left this minute, per endpoint",
        elem_id="eval-budgets",
    )
    budgets_refresh = gr.Button("Show request budgets", size="sm", elem_id="eval-budgets-refresh")
    return StoreJudgingView(
        scope,
        require_kappa,
        min_kappa,
        bulk_limit,
        concurrency,
        bulk_run,
        cancel,
        bulk_status,
        agreement,
        agreement_refresh,
        agreement_timer,
        budgets,
        budgets_refresh,
    )


# -- handlers -------------------------------------------------------------------------------------------------


def optional_count(value, name: str) -> int | None:
    """An optional count: empty (or 0, as an emptied number box sends it) means no limit."""
    number = optional_number(value, name, whole=True)
    if not number:
        return None
    if number < 1:
        raise UserError(f"{name} must be at least 1")
    return number


def refusal_markdown(error: UserError) -> str:
    """A refusal as the result area shows it: worded for the app (fields and tabs, never flags), escaped."""
    return f"**Not run.** {escape_markdown_html(in_app_words(error))}"


def agreement(services: Services) -> pd.DataFrame:
    return services.evaluation.agreement()


def report_cards(services: Services) -> pd.DataFrame:
    return services.evaluation.report_cards().rename(columns=CARD_COLUMNS)


def judges_now(services: Services) -> tuple:
    """(agreement table, report cards): what the timer and the Refresh button show."""
    return agreement(services), report_cards(services)


def request_budgets() -> pd.DataFrame:
    """Per endpoint and user, the remote requests left this minute (admins only: the service checks)."""
    return pd.DataFrame(remaining(), columns=BUDGET_COLUMNS)


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
        limit=optional_count(limit, "the number of pairs"),
        progress=calls,
    )
    return result.status_markdown(source), agreement(services)


# -- events ---------------------------------------------------------------------------------------------------


def wire(view: StoreJudgingView, cards: gr.Dataframe, services: Services, judge: list, judge_config) -> None:
    """Bulk judging, the agreement table and report cards (refreshed live), the budgets. `judge` are the judge
    controls and `judge_config(*values, concurrency=)` the JudgeConfig they describe."""

    def bulk(scope, require_kappa, min_kappa, limit, concurrency, *judge_values, progress):
        try:
            return judge_pairs_in_store(
                services,
                scope,
                require_kappa,
                min_kappa,
                limit,
                judge_config(*judge_values, concurrency=concurrency),
                progress=progress,
            )
        except UserError as exc:  # in the status, where the result would be, worded for the app
            return refusal_markdown(exc), gr.skip()

    bulk_inputs = [view.scope, view.require_kappa, view.min_kappa, view.bulk_limit, view.concurrency, *judge]
    bulk_outputs = [view.bulk_status, view.agreement]
    view.bulk_run.click(
        with_progress(bulk, bulk_inputs, bulk_outputs),
        bulk_inputs,
        bulk_outputs,
        api_name="judge_store_pairs",
        concurrency_limit=1,
    )
    tables = [view.agreement, cards]
    on(view.agreement_refresh.click, lambda: judges_now(services), [], tables, api_name="judge_agreement")
    on(view.cancel.click, lambda: services.evaluation.cancel(), [], view.bulk_status, api_name="evaluation_cancel")
    on(view.budgets_refresh.click, request_budgets, [], view.budgets, api_name="request_budgets")
    on(
        view.agreement_timer.tick,
        lambda: judges_now(services),
        [],
        tables,
        api_name=False,
        show_progress="hidden",
    )
