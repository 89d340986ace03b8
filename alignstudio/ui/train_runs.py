"""The Train tab's run list and live view: the runs table, the selected run's status, diagnostics and plots
(polled from the run folder on a `gr.Timer`), the actions that apply to it (cancel, resume, merge, evaluate)
and the run comparison. Split from `train` (the new-run form); plain handlers here, events in `wire_runs`.

The selected run survives a reload: the browser remembers it (`gr.BrowserState`), and a browser with no
remembered run is shown the newest running run, else the newest run. Clicking a row of the table selects it.
"""

from __future__ import annotations

import math

import gradio as gr
import pandas as pd

from ..core.errors import UserError
from ..services import training
from ..services.container import Services
from ..services.evaluation import summary_markdown
from .train_capabilities import capabilities_markdown

RUN_HEADERS = ["run", "state", "settings", "base model", "step", "created", "error"]
COMPARE_METRICS = [
    ("loss", "loss"),
    ("reward margin", "rewards/margins"),
    ("reward accuracy", "rewards/accuracies"),
    ("chosen reward", "rewards/chosen"),
]
POLL_S = 2.0
EMPTY_PLOT = pd.DataFrame(
    {"step": pd.Series(dtype=float), "value": pd.Series(dtype=float), "series": pd.Series(dtype=str)}
)
# Gradio 6's LinePlot fixes its colour domain when the chart is first drawn, so a plot with several
# series always receives every series name (missing ones as a NaN placeholder row, which is not drawn).
START = "expected start"
HELDOUT = "held-out"
LOSS_SERIES = ("loss", HELDOUT, START)
SPLIT_SERIES = ("train", HELDOUT)
REWARD_SERIES = ("chosen", "rejected")
COLORS = {
    "loss": "#2563eb",
    "train": "#2563eb",
    HELDOUT: "#f59e0b",
    START: "#9ca3af",
    "chosen": "#16a34a",
    "rejected": "#dc2626",
}
BEFORE_AFTER_HEADERS = ["held-out prompt", "base model", "trained model"]
# fixed widths make the answers wrap: sized by content, a long prompt pushed the trained column off-screen
BEFORE_AFTER_WIDTHS = ["20%", "40%", "40%"]
EVAL_PROMPTS = training.AGAINST_BASE_PROMPTS
# not "this run's implicit reward": against its base, that is the model judging itself (refused by the service)
EVAL_JUDGES = [
    ("best available (your reward model, else the configured server)", "auto"),
    ("reward model trained from your labels", "reward"),
    ("rule-based", "rules"),
    ("OpenAI / compatible server", "openai"),
    ("Anthropic", "anthropic"),
]


def _plot(title: str, elem_id: str, y_title: str, series: tuple[str, ...] = (), **kw) -> gr.LinePlot:
    """A live plot: one line, or several fixed, coloured series (see COLORS)."""
    if series:
        kw.update(color="series", color_map={name: COLORS[name] for name in series}, value=placeholder(series))
    else:
        kw.update(value=EMPTY_PLOT.copy())
    return gr.LinePlot(
        x="step", y="value", title=title, y_title=y_title, x_title="step", elem_id=elem_id, height=220, **kw
    )


def placeholder(series) -> pd.DataFrame:
    return pd.DataFrame({"step": [math.nan] * len(series), "value": [math.nan] * len(series), "series": list(series)})


def cancel_run(services: Services, name: str) -> str:
    if services.runs.cancel(name):
        return f"**{name}** cancelled before it started."
    return f"Cancelling **{name}**: it stops at the next step and keeps a checkpoint."


def resume_run(services: Services, name: str) -> str:
    services.runs.resume(name)
    return f"**{name}** queued again; it continues from its last checkpoint."


def merge_run(services: Services, name: str) -> str:
    result = services.runs.merge(name)
    return f"Merged into a full checkpoint **{result.name}** ({result.folder})."


def evaluate_against_base(services: Services, name: str, kind: str, force: bool, progress=None) -> str:
    """One click after a run: the trained model against its base on held-out prompts, judged in both orders
    by the judge chosen (measured against people first), saved as a report the Evaluate tab lists."""
    report, path = services.runs.evaluate_against_base(name, kind, bool(force), progress)
    return summary_markdown(report) + f"\n\nSaved as `{path.name}` (Evaluate tab, saved reports)."


def run_rows(services: Services) -> list[list]:
    return services.runs.rows()


def run_table(services: Services) -> pd.DataFrame:
    """The run table as the tab shows it (page load, tab open, timer tick)."""
    return pd.DataFrame(run_rows(services), columns=RUN_HEADERS)


def run_names(services: Services) -> list[str]:
    return services.runs.names()


def long_frame(rows: list[dict], keys: dict[str, str], fixed: bool = False) -> pd.DataFrame:
    """Metrics rows -> the long format LinePlot wants: step, value, series (one series per metric).
    With `fixed`, every series appears (a NaN placeholder row when it has no values yet)."""
    records = []
    for row in rows:
        for key, label in keys.items():
            value = row.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                records.append({"step": float(row.get("step") or 0), "value": float(value), "series": label})
    if fixed:
        present = {r["series"] for r in records}
        records += [
            {"step": math.nan, "value": math.nan, "series": label} for label in keys.values() if label not in present
        ]
    return pd.DataFrame(records, columns=["step", "value", "series"]) if records else EMPTY_PLOT.copy()


def metric_frames(rows: list[dict], expected_start: float | None = None) -> dict[str, pd.DataFrame]:
    """Every plot of the live view, from a run's metrics rows. `expected_start` draws the loss a policy
    equal to its reference has (ln 2 for sigmoid DPO, 0.5 for KTO) as a flat reference line."""
    loss = long_frame(rows, {"loss": "loss", "eval_loss": HELDOUT})
    steps = sorted(set(loss["step"]))
    if expected_start is not None and steps:
        reference = pd.DataFrame(
            {"step": steps, "value": [expected_start] * len(steps), "series": [START] * len(steps)}
        )
        loss = pd.concat([loss, reference], ignore_index=True)
    if not len(loss) or set(loss["series"]) != set(LOSS_SERIES):
        loss = pd.concat(
            [loss, placeholder([s for s in LOSS_SERIES if s not in set(loss["series"])])], ignore_index=True
        )
    return {
        "loss": loss,
        "accuracy": long_frame(rows, {"rewards/accuracies": "train", "eval_rewards/accuracies": HELDOUT}, fixed=True),
        "margins": long_frame(rows, {"rewards/margins": "train", "eval_rewards/margins": HELDOUT}, fixed=True),
        "rewards": long_frame(rows, {"rewards/chosen": "chosen", "rewards/rejected": "rejected"}, fixed=True),
        "kl": long_frame(rows, {"kl": "kl"}),
        "lr": long_frame(rows, {"learning_rate": "learning rate"}),
        "throughput": long_frame(rows, {"tokens_per_s": "tokens/s"}),
    }


def _duration(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m {seconds % 60:02d}s"
    )


def status_markdown(view: training.LiveRun) -> str:
    """The run's state, settings, progress and result."""
    status, spec = view.status, view.spec
    train_rows = [r for r in view.rows if "loss" in r]
    last = train_rows[-1] if train_rows else {}
    step = last.get("step", status.step or 0)
    total = last.get("max_steps") or status.max_steps
    lines = [f"**{status.state.upper()}** · {spec.label} · base `{spec.model}`"]
    progress = f"step {step}" + (f" of {total}" if total else "")
    if view.running:
        progress += f" · ETA {_duration(last.get('eta_s'))}"
        if status.cancel_requested:
            progress += " · cancelling at the next step"
    if last.get("tokens_per_s"):
        progress += f" · {last['tokens_per_s']:.0f} tokens/s"
    lines.append(progress)
    if view.running and last.get("sharing"):
        lines.append(
            f"Sharing the CPU with labeling: the app is sampling pairs, so training runs on "
            f"{last['threads']} core(s) and the app on the other; it takes every core back when the "
            "app is idle."
        )
    if view.succeeded:
        lines.append(
            f"Model: `{status.model_dir}`"
            + (f" · registered as **{status.registered_as}**" if status.registered_as else "")
        )
    if view.schedule:
        lines.append(
            f"Schedule: lr {view.schedule.learning_rate:g} · batch {view.schedule.batch_size} · "
            f"{view.schedule.epochs:g} epoch(s) · warm-up {view.schedule.warmup_steps} "
            "(see the run card for why)"
        )
    if view.heldout_note:
        lines.append(view.heldout_note[:1].upper() + view.heldout_note[1:] + ".")
    if status.error:
        lines.append(f"**Error:** {status.error}")
        if status.error_tail:
            lines.append("```\n" + status.error_tail + "\n```")
    return "\n\n".join(lines)


def diagnostics_markdown(view: training.LiveRun) -> str:
    """The verdict of a finished run first (never "no warning signs" for a run that learned nothing), then
    the diagnostics of its metrics."""
    if not view.rows:
        return ""
    found = [d.markdown() for d in view.findings]
    if view.reward:  # the verdict (with its interval, or "too few to tell"), then the figures behind it
        head = [view.verdict.markdown()] if view.verdict is not None else []
        return "\n\n".join(head + [p for p in [reward_markdown(view)] if p] + found)
    parts = []
    if view.verdict is not None:
        parts.append(view.verdict.markdown())
        if not view.learned and not found:
            return parts[0]
    if not found:
        parts.append("No warning signs in the metrics so far.")
    return "\n\n".join(parts + found)


def reward_markdown(view: training.LiveRun) -> str:
    """A reward run's result: held-out pairwise accuracy against the labels (by prompt), with its tie margin."""
    result = view.reward_result
    if result is None:
        return ""
    if result.accuracy is None:
        return ("**Note:** no held-out measure: " + result.note) if result.note else ""
    return (
        f"{'' if view.reward_usable else '**Stop:** '}**Reward model: held-out pairwise accuracy "
        f"{result.accuracy:.2f} on {result.pairs} pairs (chance 0.50).** Tie margin {result.tie_margin:.3g} "
        f"({result.ties} ties); agreement counting a tie as half: {result.agreement_with_ties:.2f}. "
        "Use it as `--judge reward` (registered as a judge version)."
    )


def placeholder_calibration() -> pd.DataFrame:
    return pd.DataFrame(
        {"predicted": [math.nan] * 2, "observed": [math.nan] * 2, "series": ["reward model", "perfectly calibrated"]}
    )


def calibration_frame(view: training.LiveRun | None) -> pd.DataFrame:
    """The reward run's calibration table as a plot: one point per probability bin, and the diagonal."""
    table = view.reward_result.calibration if view is not None and view.reward_result else []
    if not table:
        return placeholder_calibration()
    rows = [{"predicted": t["predicted"], "observed": t["observed"], "series": "reward model"} for t in table]
    rows += [{"predicted": x, "observed": x, "series": "perfectly calibrated"} for x in (0.0, 1.0)]
    return pd.DataFrame(rows)


def before_after_frame(view: training.LiveRun | None) -> pd.DataFrame:
    rows = [[r.prompt, r.base, r.trained] for r in (view.before_after if view is not None else [])]
    return pd.DataFrame(rows, columns=BEFORE_AFTER_HEADERS)


LIVE_VIEW_OUTPUTS = 13  # what run_view returns: status, diagnostics, before/after, calibration, 7 plots, log,
# the capability check


def run_view(services: Services, name: str | None) -> tuple:
    """Everything the live view shows for one run: status, diagnostics, seven plots, the log tail, the latest
    capability check."""
    try:
        view = services.runs.live(name)
    except UserError as exc:
        return (str(exc), "", before_after_frame(None), gr.update(visible=False), *_empty_frames(), "", "")
    if view is None:
        return ("Choose a run.", "", before_after_frame(None), gr.update(visible=False), *_empty_frames(), "", "")
    frames = metric_frames(view.rows, view.expected_start)
    return (
        status_markdown(view),
        diagnostics_markdown(view),
        before_after_frame(view),
        gr.update(value=calibration_frame(view), visible=view.reward),
        frames["loss"],
        frames["accuracy"],
        frames["margins"],
        frames["rewards"],
        frames["kl"],
        frames["lr"],
        frames["throughput"],
        view.log,
        capabilities_markdown(services, name),
    )


def _empty_frames() -> list[pd.DataFrame]:
    return list(metric_frames([]).values())


def compare_frame(services: Services, names: list[str] | None, metric: str) -> pd.DataFrame:
    """One series per run for `metric` (loss, margins, ...), e.g. across a beta sweep."""
    records = []
    for name, beta, rows in services.runs.metrics_by_run(names):
        # beta is a setting of the policy losses only: a reward run (beta None) is named alone
        label = name if beta is None or f"beta{beta:g}" in name else f"{name} (beta={beta:g})"
        frame = long_frame(rows, {metric: label})
        records.extend(frame.to_dict("records"))
    return pd.DataFrame(records, columns=["step", "value", "series"]) if records else EMPTY_PLOT.copy()


def poll(services: Services, name: str | None) -> tuple:
    """Timer tick: the run table and the selected run's live view."""
    return (run_table(services), *run_view(services, name))


def tick(services: Services, name: str | None) -> tuple:
    """Timer tick: the run table, and the selected run's live view and actions. With no run selected only the
    table changes: a tick sent just before the page load restored a run would otherwise blank the view the
    load drew ("Choose a run." over a RUNNING run); selecting nothing already shows the empty view."""
    if not name:
        return (run_table(services), *(gr.skip() for _ in range(LIVE_VIEW_OUTPUTS + len(ACTIONS))))
    return (*poll(services, name), *run_actions(services, name))


ACTIONS = ("cancel", "resume", "merge", "evaluate")


def run_actions(services: Services, name: str | None) -> tuple:
    """The action buttons for the selected run, clickable only where they apply (cancel, resume, merge,
    evaluate, in that order; the training service decides)."""
    allowed = services.runs.allowed_actions(name)
    return tuple(gr.update(interactive=allowed[key]) for key in ACTIONS)


def restore(services: Services, wanted: str | None) -> tuple:
    """Page load and tab open: the run table and lists as they are now, the selected run (see
    `RunsService.default_run`), its live view and the actions that apply to it."""
    name = services.runs.default_run(wanted)
    names = run_names(services)
    return (
        run_table(services),
        gr.update(choices=names, value=name),
        gr.update(choices=names),
        *run_view(services, name),
        *run_actions(services, name),
    )


def pick_from_table(table: pd.DataFrame, event: gr.SelectData):
    """A click on a row of the run table selects that run."""
    row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
    if table is None or row is None or not 0 <= int(row) < len(table):
        return gr.skip()
    return str(table.iloc[int(row)]["run"])


def selected(services: Services, name: str | None) -> tuple:
    """A run was selected: its live view, its actions, and the name for the browser to remember."""
    return (*run_view(services, name), *run_actions(services, name), name)


def run_lists(services: Services, current: str | None) -> tuple:
    """Opening the tab: the run table and run lists as they are now. The selection stays (a value sent a moment
    earlier may be older than the page's); only an empty one gets the newest running or newest run."""
    names = run_names(services)
    run = gr.update(choices=names) if current else gr.update(choices=names, value=services.runs.default_run(None))
    return run_table(services), run, gr.update(choices=names)
