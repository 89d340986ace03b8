"""Evaluation: a model against a baseline on held-out prompts, judged pairwise in both orders.

Steps: generate one answer per prompt from each model (seeded, batched); judge every (model, baseline) pair
in both orders (`judges.protocol`); report wins / ties / losses, the win rate raw, length-controlled and
style-controlled (length and markdown, `style`) with bootstrap intervals (500 rounds for the controlled ones,
each refitting its model) and a warning when a controlled rate is far from the raw one, mean lengths, the seed's
pathology counts for both models, the alignment-tax check (perplexity of both on a held-out text) and every
answer side by side. The report is an `EvalReport` (its `to_dict` is the JSON file), saved atomically;
`summary_markdown` and the table helpers render it for the CLI and the Evaluate tab.

Generators are anything with `name` and `complete(conversations, temperatures, *, top_p, max_new_tokens, seed)`
(local `sampling.sampler.Generator`, or a remote one from `sampling.remote`); perplexity needs a local model and is
skipped, with a note, for a remote one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...core import access
from ...core.errors import UserError
from ...core.formats import PromptItem
from ...core.settings import check_bounds, setting, setting_of
from ...core.workspace import ALIGNMENT_TAX_TEXT, Workspace
from ..judges import Judge
from ..judges.config import JudgeConfig
from ..judges.protocol import JudgeCache, PairItem, judge_pairs
from ..sampling.settings import SamplingSettings
from . import stats, style
from .render import pathology_table as pathology_table  # the reports as a person reads them
from .render import samples_table as samples_table
from .render import summary_markdown as summary_markdown
from .reports import REPORT_KIND as REPORT_KIND  # the report, its file and its model-card line
from .reports import REPORT_VERSION as REPORT_VERSION
from .reports import EvalReport, EvalResults, default_report_path, remember_in_model_card, save_report
from .reports import list_reports as list_reports
from .reports import load_report as load_report
from .reports import reports_dir as reports_dir

if TYPE_CHECKING:  # Trust only as a type: the CLI reads EvalSettings from here
    from ..judges.independence import Independence
    from ..judges.trust import Trust

HELDOUT_TEXT = ALIGNMENT_TAX_TEXT  # the drift budget (training.drift) measures runs on the same text
Progress = Callable[[float, str], None]
_SAMPLING = SamplingSettings()
# bootstrap rounds of the controlled win rates (each refits its model): Arena-Hard found 100 unstable, 500 stable
CONTROLLED_BOOTSTRAP_ROUNDS = 500


@dataclass(frozen=True)
class EvalSettings:
    """How an evaluation (and `alignstudio generate`) samples, judges and measures; each field holds its default,
    bounds and help, from which the CLI flags and the Evaluate tab's controls are built."""

    # the sampling defaults are the sampler's (setting A); an answer may be longer than a pair's
    max_new_tokens: int = setting(
        _SAMPLING.max_new_tokens, label="Max new tokens", help="tokens per answer at most", minimum=1, maximum=4096
    )
    temperature: float = setting(
        _SAMPLING.temperature_a, label="Temperature", help="sampling temperature", minimum=0.05, maximum=2.0
    )
    top_p: float = setting(_SAMPLING.top_p, label="top_p", help="nucleus sampling mass", maximum=1.0)
    seed: int = setting(0, label="Seed (empty = 0)", help="seed for sampling and the bootstrap")
    batch_size: int = setting(8, help="prompts per generate call", minimum=1)
    limit: int | None = setting(
        None, label="Prompts (empty = all)", help="only the first N prompts", minimum=1, form_default=20
    )
    confidence: float = 0.95
    n_resamples: int = 2000
    concurrency: int = setting(setting_of(JudgeConfig, "concurrency").default, minimum=1)
    perplexity: bool = setting(
        True,
        label="Alignment-tax check (perplexity on held-out text)",
        help="the perplexity (alignment tax) check; --no-perplexity skips it",
    )
    perplexity_max_tokens: int | None = 8192
    injection_guard: bool = setting(setting_of(JudgeConfig, "injection_guard").default)

    def __post_init__(self):
        check_bounds(self, "max_new_tokens", "temperature")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.batch_size < 1 or self.concurrency < 1:
            raise UserError("batch size and concurrency must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise UserError("limit must be at least 1")
        if not 0.5 <= self.confidence < 1.0:
            raise UserError(f"confidence must be in [0.5, 1), got {self.confidence}")


def generate_answers(
    generator, prompts: Sequence[PromptItem], settings: EvalSettings, progress: Callable[[int, int], None] | None = None
) -> list[str]:
    answers: list[str] = []
    for start in range(0, len(prompts), settings.batch_size):
        batch = prompts[start : start + settings.batch_size]
        answers += generator.complete(
            [p.messages for p in batch],
            [settings.temperature] * len(batch),
            top_p=settings.top_p,
            max_new_tokens=settings.max_new_tokens,
            seed=settings.seed + start,
        )
        if progress is not None:
            progress(len(answers), len(prompts))
    return answers


def _perplexity(generator, text: str | None, settings: EvalSettings) -> dict:
    if not settings.perplexity or text is None:
        return {"skipped": "not requested"}
    model, tokenizer = getattr(generator, "model", None), getattr(generator, "tokenizer", None)
    if model is None or tokenizer is None or not hasattr(model, "forward"):
        return {"skipped": f"{generator.name} is a remote model: no token probabilities to measure"}
    from ...training.drift import text_perplexity  # torch and transformers: loaded only when measuring

    start = time.time()
    with getattr(generator, "lock", None) or contextlib.nullcontext():  # a local generator decodes one call at a time
        ppl, tokens = text_perplexity(model, tokenizer, text, max_tokens=settings.perplexity_max_tokens)
    return {"perplexity": round(ppl, 4), "tokens": tokens, "seconds": round(time.time() - start, 2)}


def _outcome(winner: str | None) -> str | None:
    return {"A": "win", "B": "loss", "tie": "tie"}.get(winner) if winner is not None else None


def _results(
    run_summary, outcomes: list, model_answers: list[str], base_answers: list[str], settings: EvalSettings
) -> EvalResults:
    judged = [i for i, o in enumerate(outcomes) if o is not None]
    scores = stats.scores_of([outcomes[i] for i in judged])
    len_model = [stats.words(model_answers[i]) for i in judged]
    len_base = [stats.words(base_answers[i]) for i in judged]
    low, high = stats.bootstrap_ci(
        scores, confidence=settings.confidence, n_resamples=settings.n_resamples, seed=settings.seed
    )
    lc = stats.length_controlled_win_rate(scores, len_model, len_base)
    lc_low, lc_high = stats.length_controlled_interval(
        scores,
        len_model,
        len_base,
        confidence=settings.confidence,
        n_resamples=CONTROLLED_BOOTSTRAP_ROUNDS,
        seed=settings.seed,
    )
    sc = style.style_controlled_win_rate(
        scores,
        [model_answers[i] for i in judged],
        [base_answers[i] for i in judged],
        bootstrap_rounds=CONTROLLED_BOOTSTRAP_ROUNDS,
        seed=settings.seed,
        confidence=settings.confidence,
    )
    s = run_summary
    return EvalResults(
        n=len(outcomes),
        judged=len(judged),
        failed=len(outcomes) - len(judged),
        wins=outcomes.count("win"),
        ties=outcomes.count("tie"),
        losses=outcomes.count("loss"),
        win_rate=_round(stats.win_rate(scores)),
        win_rate_ci=[_round(low), _round(high)],
        confidence=settings.confidence,
        ci_method="bootstrap over prompts (scipy.stats.bootstrap, BCa)",
        lc_win_rate=_round(lc["lc_win_rate"]),
        lc_win_rate_ci=[_round(lc_low), _round(lc_high)],
        length_model={k: v for k, v in lc.items() if k != "lc_win_rate"},
        sc_win_rate=_round(sc["sc_win_rate"]),
        sc_win_rate_ci=[_round(v) for v in sc["ci"]],
        style_model={
            "coefficients": {k: _round(v) for k, v in sc["coefficients"].items()},
            "scales": {k: _round(v) for k, v in sc["scales"].items()},
            "n": sc["n"],
            "bootstrap_rounds": CONTROLLED_BOOTSTRAP_ROUNDS,
        },
        position_inconsistency_rate=s.position_inconsistency_rate,
        flip_rate=s.flip_rate,
        first_position_rate=s.first_position_rate,
        parse_failures=s.parse_failures,
        backend_failures=s.backend_failures,
        injection_guarded=s.guarded,
        identical_answers=s.identical,
    )


def _alignment_tax(model_gen, baseline_gen, heldout_text: str | None, settings: EvalSettings) -> dict:
    ppl_model = _perplexity(model_gen, heldout_text, settings)
    ppl_base = _perplexity(baseline_gen, heldout_text, settings)
    ppl = {
        "text": str(HELDOUT_TEXT.name) if heldout_text is not None else None,
        "model": ppl_model,
        "baseline": ppl_base,
    }
    if "perplexity" in ppl_model and "perplexity" in ppl_base:
        ppl["change_pct"] = round(100.0 * (ppl_model["perplexity"] / ppl_base["perplexity"] - 1.0), 3)
    return ppl


def evaluate(
    model_gen,
    baseline_gen,
    prompts: Sequence[PromptItem],
    judge: Judge,
    *,
    settings: EvalSettings = EvalSettings(),
    cache: JudgeCache | None = None,
    heldout_text: str | None = None,
    prompts_source: str = "",
    progress: Progress | None = None,
    trust: Trust | None = None,
    independence: Independence | None = None,
) -> EvalReport:
    """Run the whole evaluation and return the report (see the module docstring). `trust` is the judge's
    measured agreement with people and its report card (`judges.trust.vet_judge`), `independence` whether it is
    the evaluated model's own (`judges.independence.check`): both carried in the report with their warnings."""
    prompts = list(prompts)[: settings.limit] if settings.limit else list(prompts)
    if not prompts:
        raise UserError("the evaluation has no prompts")
    say = progress or (lambda fraction, desc: None)
    timings: dict[str, float] = {}

    def stage(name: str, lo: float, hi: float):
        return lambda done, total: say(lo + (hi - lo) * done / max(total, 1), f"{name} {done}/{total}")

    say(0.0, f"generating ({model_gen.name})")
    t = time.time()
    model_answers = generate_answers(model_gen, prompts, settings, stage(f"generating ({model_gen.name})", 0.0, 0.35))
    timings["generate_model"] = time.time() - t
    t = time.time()
    base_answers = generate_answers(
        baseline_gen, prompts, settings, stage(f"generating ({baseline_gen.name})", 0.35, 0.7)
    )
    timings["generate_baseline"] = time.time() - t

    t = time.time()
    items = [
        PairItem(p.id or str(i + 1), p.messages, m, b)
        for i, (p, m, b) in enumerate(zip(prompts, model_answers, base_answers))
    ]
    run = judge_pairs(
        judge,
        items,
        cache=cache,
        concurrency=settings.concurrency,
        progress=stage(f"judging ({judge.name})", 0.7, 0.9),
        injection_guard=settings.injection_guard,
    )
    timings["judge"] = time.time() - t
    if cache is not None:
        cache.record(judge.name, run.judgments, prefix="eval:")

    say(0.9, "measuring perplexity (alignment tax)")
    t = time.time()
    tax = _alignment_tax(model_gen, baseline_gen, heldout_text, settings)
    timings["perplexity"] = time.time() - t

    outcomes = [_outcome(j.winner) for j in run.judgments]
    summary = run.summary()
    samples = [
        {
            "id": item.key,
            "prompt": prompts[i].text,
            "model": model_answers[i],
            "baseline": base_answers[i],
            "outcome": outcomes[i] or "failed",
            "first": j.first.winner,
            "second": j.second_winner,
            "rationale": j.rationale,
            "error": j.error,
        }
        for i, (item, j) in enumerate(zip(items, run.judgments))
    ]
    say(1.0, "done")
    return EvalReport(
        model=model_gen.name,
        baseline=baseline_gen.name,
        prompts={"source": prompts_source, "count": len(items)},
        judge=run.judge,
        judge_trust=trust.to_dict() if trust is not None else None,
        settings=asdict(settings),
        results=_results(summary, outcomes, model_answers, base_answers, settings),
        lengths={
            "model_mean_words": _mean([stats.words(a) for a in model_answers]),
            "baseline_mean_words": _mean([stats.words(a) for a in base_answers]),
            "model_mean_chars": _mean([len(a) for a in model_answers]),
            "baseline_mean_chars": _mean([len(a) for a in base_answers]),
        },
        pathologies={
            "model": stats.pathology_counts(model_answers),
            "baseline": stats.pathology_counts(base_answers),
            "of": len(items),
        },
        alignment_tax=tax,
        usage=summary.usage.to_dict() | {"cost_usd": summary.cost_usd},
        timings_s={k: round(v, 2) for k, v in timings.items()},
        samples=samples,
        judge_independence=independence.to_dict() if independence is not None else None,
    )


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


# -- the Evaluate tab's and the Train tab's evaluation ----------------------------------------------------------


def evaluate_and_save(
    workspace: Workspace,
    store,
    generators,
    prompts: Sequence[PromptItem],
    model: str,
    baseline: str,
    judge: Judge,
    *,
    settings: EvalSettings = EvalSettings(),
    force_judge: bool = False,
    prompts_source: str = "",
    progress: Progress | None = None,
    out: Path | None = None,
    heldout_text: str | None = None,
    model_gen=None,
    baseline_gen=None,
    on_trust: Callable[[Trust], None] | None = None,
) -> tuple[EvalReport, Path]:
    """The judge checked first: refused when it is the evaluated model's own implicit reward, measured against
    people (refused at chance) unless forced (`on_trust` hears that measurement); then `evaluate`, then the report
    saved to `out` (default: under evals/). What the Evaluate tab, the Train tab's "against the base" button and
    `alignstudio eval` run. `model_gen` / `baseline_gen` replace the pool's generator for that side (a server by
    URL: the model card is then not touched); `heldout_text` replaces the shipped alignment-tax text."""
    access.require_admin("evaluation")
    from ..judges.independence import vet_independence
    from ..judges.trust import vet_judge

    independence = vet_independence(judge, getattr(generators, "registry", None), model, force=bool(force_judge))
    cache = JudgeCache.for_workspace(workspace)
    trust = vet_judge(judge, store, force=bool(force_judge), cache=cache)
    if on_trust is not None:
        on_trust(trust)
    local_model = model_gen is None
    model_gen = model_gen or generators.get(model)
    baseline_gen = baseline_gen or generators.get(baseline)
    if heldout_text is None and settings.perplexity and HELDOUT_TEXT.is_file():
        heldout_text = HELDOUT_TEXT.read_text(encoding="utf-8")
    report = evaluate(
        model_gen,
        baseline_gen,
        prompts,
        judge,
        settings=settings,
        cache=cache,
        heldout_text=heldout_text if settings.perplexity else None,
        prompts_source=prompts_source,
        progress=progress,
        trust=trust,
        independence=independence,
    )
    path = save_report(report, out or default_report_path(workspace, model_gen.name, baseline_gen.name))
    if local_model:
        remember_in_model_card(getattr(generators, "registry", None), model, report, path)
    return report, path
