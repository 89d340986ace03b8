"""Bulk judging: the store's pairs (or a file's) through the swapped-order protocol, verdicts into events.

Each pair's combined verdict becomes one preference event with source = judge:NAME, annotator = NAME and the
rationale of both orders; it is written as soon as that pair is done, so an interrupted run keeps what it
finished (and, for remote judges, the cache makes a rerun free). Pairs without a verdict are not written.

Every judge is measured against held-out human labels first and refused at chance unless forced (`trust`).
A minimum Cohen's kappa against the human labels can also be required before a judge labels unlabeled pairs:
measure it first by judging pairs humans already labeled (scope "human"), which the gate never blocks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ...core.conversation import as_messages, text_of
from ...core.errors import UserError
from ...core.formats import read_records
from ...core.store import PairRecord, Store
from .. import remote_budget
from . import Judge
from .agreement import Agreement, judge_vs_humans
from .protocol import JudgeCache, JudgeRun, PairItem, PairJudgment, ProgressFn, RunSummary, judge_pairs
from .trust import Trust, vet_judge

SCOPES = {
    "unlabeled": "pairs nobody has labeled yet",
    "human": "pairs humans labeled that this judge has not (measures agreement; never gated)",
    "all": "every pair this judge has not labeled",
}


def pairs_to_judge(store: Store, source: str, scope: str = "unlabeled", limit: int | None = None) -> list[PairRecord]:
    if scope not in SCOPES:
        raise UserError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
    labels = store.labels("preference")
    labeled = {lab.pair_id for lab in labels}
    by_judge = {lab.pair_id for lab in labels if lab.source == source}
    by_human = {lab.pair_id for lab in labels if lab.source == "human"}
    pairs = []
    for pair in store.pairs():
        if scope == "unlabeled" and pair.id in labeled:
            continue
        if scope == "human" and (pair.id not in by_human or pair.id in by_judge):
            continue
        if scope == "all" and pair.id in by_judge:
            continue
        pairs.append(pair)
    return pairs[:limit] if limit is not None else pairs


def check_gate(store: Store, source: str, min_kappa: float | None) -> Agreement | None:
    """Raise UserError unless the judge's kappa against the humans reaches `min_kappa` (None = no gate)."""
    if min_kappa is None:
        return None
    if not -1.0 <= min_kappa <= 1.0:
        raise UserError(f"the minimum kappa must be between -1 and 1, got {min_kappa}")
    stats = judge_vs_humans(store, source)
    if stats.kappa is None:
        raise UserError(
            f"{source} has no measurable agreement with human labels yet ({stats.shared} shared pairs); "
            f"judge pairs humans labeled first (scope 'human') to measure it against the minimum kappa "
            f"{min_kappa:g}"
        )
    if stats.kappa < min_kappa:
        raise UserError(
            f"{source} agrees with humans at kappa {stats.kappa:.2f} on {stats.shared} shared pairs, "
            f"below the required {min_kappa:g}: it may not label pairs in bulk"
        )
    return stats


@dataclass
class BulkResult:
    """What bulk judging did: the run, the events it wrote, the gate's measurement and the judge's trust."""

    run: JudgeRun
    scope: str
    events: list[str] = field(default_factory=list)
    gate: Agreement | None = None
    trust: Trust | None = None

    def summary(self) -> RunSummary:
        return self.run.summary()

    def status_markdown(self, source: str) -> str:
        """The Evaluate tab's status: the counts, the events written and the judge's trust."""
        s = self.summary()
        if s.pairs == 0:
            status = f"No pairs to judge in scope **{self.scope}**."
        else:
            status = (
                f"**{source}** judged {s.pairs} pairs ({self.scope}): {s.line()}"
                f"\n\nRecorded **{len(self.events)}** events"
            )
        if self.trust is not None:
            status = (
                (f"**{self.trust.warning}**\n\n" if self.trust.warning else "")
                + status
                + f"\n\nJudge vs people: {self.trust.line()}"
            )
        return status


def store_verdict(store: Store, judge: Judge, judgment: PairJudgment) -> str | None:
    """A decisive or tied verdict (both orders agreed) as the judge's preference label: source judge:NAME, the
    rationale of both orders, A shown first. None when the orders disagreed (no verdict)."""
    if judgment.winner is None:
        return None
    return store.add_preference(
        judgment.key,
        judgment.winner,
        annotator=judge.name,
        source=judge.source,
        shown_left="A",
        rationale=judgment.rationale,
    )


def judge_store(
    store: Store,
    judge: Judge,
    *,
    cache: JudgeCache | None = None,
    scope: str = "unlabeled",
    min_kappa: float | None = None,
    limit: int | None = None,
    concurrency: int = 4,
    progress: ProgressFn | None = None,
    injection_guard: bool = True,
    force: bool = False,
    cancel: threading.Event | None = None,
) -> BulkResult:
    """Judge the store's pairs in `scope` and record each verdict as a judge:NAME preference event. Before it
    labels anything but the human-labeled pairs (scope "human" is itself a measurement), the judge is measured
    against held-out human labels and refused at chance unless `force` (`trust.vet_judge`).

    Setting `cancel` stops it: no request is sent after that (remote_budget.Cancelled is raised; the verdicts
    recorded so far stay). Over its request budget it waits for the window rather than failing."""
    with remote_budget.cancellable(cancel or threading.Event()), remote_budget.patient():
        return _judge_store(
            store,
            judge,
            cache=cache,
            scope=scope,
            min_kappa=min_kappa,
            limit=limit,
            concurrency=concurrency,
            progress=progress,
            injection_guard=injection_guard,
            force=force,
        )


def _judge_store(
    store: Store, judge: Judge, *, cache, scope, min_kappa, limit, concurrency, progress, injection_guard, force
) -> BulkResult:
    gate = check_gate(store, judge.source, min_kappa) if scope != "human" else None
    trust = vet_judge(judge, store, force=force, cache=cache) if scope != "human" else None
    pairs = pairs_to_judge(store, judge.source, scope, limit)
    items = [PairItem(p.id, p.messages, p.text_a, p.text_b) for p in pairs]
    events: list[str] = []

    def record(j: PairJudgment) -> None:
        event = store_verdict(store, judge, j)
        if event is not None:
            events.append(event)
            if cache is not None:
                cache.record(judge.name, [j])

    run = judge_pairs(
        judge,
        items,
        cache=cache,
        concurrency=concurrency,
        progress=progress,
        on_judgment=record,
        injection_guard=injection_guard,
    )
    return BulkResult(run, scope, events, gate, trust)


# -- pairs from a file ----------------------------------------------------------------------------------------


@dataclass
class FilePairs:
    items: list[PairItem]
    labeled: bool  # chosen/rejected rows: A is the chosen response, so a verdict "A" agrees with the file


def load_pair_file(path: str | Path) -> FilePairs:
    """Pairs from JSONL/CSV/Parquet: `prompt` with `response_a`/`response_b` (what `alignstudio sample` writes),
    or `prompt` with `chosen`/`rejected` (then A = chosen, to measure the judge against the file's labels)."""
    path = Path(path)
    items, labeled_rows = [], 0
    records = read_records(path)
    for index, (line, record) in enumerate(records):
        where = f"{path.name}, line {line}"
        if "response_a" in record and "response_b" in record:
            fields = ("response_a", "response_b")
        elif "chosen" in record and "rejected" in record:
            fields = ("chosen", "rejected")
            labeled_rows += 1
        else:
            raise UserError(f"{where}: needs 'response_a' and 'response_b' (or 'chosen' and 'rejected') fields")
        if record.get("prompt") in (None, "", []):
            raise UserError(f"{where}: missing field 'prompt'")
        try:
            messages = as_messages(record["prompt"], "user")
        except TypeError as exc:
            raise UserError(f"{where}: field 'prompt': {exc}") from None
        texts = []
        for name in fields:
            value = record[name]
            text = text_of(value) if not isinstance(value, str) else value
            if not isinstance(text, str) or not text.strip():
                raise UserError(f"{where}: field '{name}' is empty")
            texts.append(text)
        items.append(PairItem(str(record.get("id") or record.get("pair_id") or index + 1), messages, *texts))
    if labeled_rows and labeled_rows != len(items):
        raise UserError(f"{path.name}: mixes chosen/rejected rows with response_a/response_b rows")
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise UserError(f"{path.name}: pair ids are not unique")
    return FilePairs(items, labeled=bool(labeled_rows))
