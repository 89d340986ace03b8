"""The pairwise protocol: every pair judged in both orders, combined, cached, counted.

- Each pair is shown as (A, B) and as (B, A). The same winner both times is a win; a tie both times is a tie;
  anything else (A then B, or a win one way and a tie the other) is a tie and counts as position-inconsistent.
  A pair with a failed call or a malformed reply in either order has no verdict (it is reported, not guessed).
  Two identical responses are a tie without asking the judge (and are left out of the position statistics).
- Remote judges run from a bounded thread pool (the SDKs retry and time out on their own); a transient failure
  marks its pair failed and the run goes on, a fatal one (bad key) stops the run with one clear line.
- Verdicts of remote judges are cached by content (the judge's fingerprint and the exact conversation and
  responses, hashed) in the workspace, so nothing is paid for twice. Malformed replies are not cached.
- Injection guard: a response flagged by `prompt.injection_signals` is never recorded as the winner against an
  unflagged one; such a win becomes a tie and is reported. A flagged response is named in the rationale (which
  bulk judging stores with the event), whatever the verdict.

`JudgeCache` (in `cache`) also keeps a log of combined judgments (both orders per pair) for the agreement view.
It knows the store only through pair ids it is given.
"""

from __future__ import annotations

import contextvars
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ...core.errors import UserError
from . import SIDES, Judge, JudgeError, JudgeInput, Usage, Verdict
from .cache import JudgeCache as JudgeCache  # verdicts by content, the judgment log, the report cards
from .prompt import injection_signals

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class PairItem:
    """A pair to judge: `key` identifies it (a store pair id, or a prompt id in an evaluation)."""

    key: str
    messages: list[dict]
    response_a: str
    response_b: str


def swap(winner: str | None) -> str | None:
    return {"A": "B", "B": "A"}.get(winner, winner) if winner is not None else None


def combine(first: str | None, second_swapped: str | None) -> tuple[str | None, bool | None]:
    """(winner, consistent) from the verdict in the original order and the verdict in the swapped order (as the
    judge gave it, i.e. with A meaning the original B). None when either order has no verdict."""
    second = swap(second_swapped)
    if first is None or second is None:
        return None, None
    if first == second:
        return first, True
    return "tie", False


@dataclass
class PairJudgment:
    key: str
    winner: str | None  # A | B | tie, in the pair's own labels; None = no verdict
    first: Verdict  # shown as (A, B)
    second: Verdict  # shown as (B, A); its winner is in the swapped labels
    consistent: bool | None
    injection: dict = field(default_factory=dict)  # {"A": [signals], "B": [signals]} when flagged
    guarded: bool = False  # a flagged response's win was withheld
    len_a: int = 0  # words
    len_b: int = 0
    identical: bool = False  # the two responses are the same text: a tie, the judge was not asked

    @property
    def second_winner(self) -> str | None:
        """The swapped-order verdict in the pair's own labels."""
        return swap(self.second.winner)

    @property
    def flipped(self) -> bool:
        """Both orders decisive and contradicting each other: the verdict followed the position."""
        return self.first.winner in SIDES and self.second_winner in SIDES and self.first.winner != self.second_winner

    @property
    def error(self) -> str:
        errors = [f"{order}: {v.error}" for order, v in (("A,B", self.first), ("B,A", self.second)) if v.error]
        return "; ".join(errors)

    @property
    def rationale(self) -> str:
        if self.identical:
            return "the two responses are identical: a tie (the judge was not asked)"
        second = (
            "no verdict"
            if self.second.winner is None
            else (f"{self.second_winner} (the judge said {self.second.winner} with the responses shown as B, A)")
        )
        parts = [
            f"[A,B] {self.first.winner or 'no verdict'}: {self.first.rationale or self.first.error}",
            f"[B,A] {second}: {self.second.rationale or self.second.error}",
        ]
        if self.consistent is False:
            parts.append("the two orders disagree: recorded as a tie")
        if self.injection:  # first, so the 4000-character cap never cuts it: it is stored with the verdict
            flagged = "; ".join(f"{side} ({', '.join(signals)})" for side, signals in sorted(self.injection.items()))
            parts.insert(0, f"injection attempt flagged in {flagged}")
        if self.guarded:
            parts.append("injection guard: a response that tries to instruct the judge can not win; recorded as a tie")
        return " | ".join(parts)[:4000]

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "winner": self.winner,
            "first": self.first.winner,
            "second": self.second_winner,
            "consistent": self.consistent,
            "flipped": self.flipped,
            "injection": self.injection,
            "guarded": self.guarded,
            "identical": self.identical,
            "rationale": self.rationale,
            "error": self.error,
            "first_raw": self.first.raw,
            "second_raw": self.second.raw,
            "len_a": self.len_a,
            "len_b": self.len_b,
        }


@dataclass
class JudgeRun:
    judge: dict
    judgments: list[PairJudgment]
    usage: Usage
    cost: float | None

    def summary(self) -> "RunSummary":
        """Counts and rates; the position statistics cover the pairs the judge saw in both orders."""
        judged = [j for j in self.judgments if j.consistent is not None]
        both = [j for j in judged if not j.identical]
        verdicts = [v for j in self.judgments for v in (j.first, j.second)]
        first_won = [j.first.winner == "A" for j in both if j.first.winner in SIDES]
        first_won += [j.second.winner == "A" for j in both if j.second.winner in SIDES]
        counts = Counter(j.winner for j in self.judgments)
        return RunSummary(
            pairs=len(self.judgments),
            judged=len(judged),
            failed=len(self.judgments) - len(judged),
            a=counts["A"],
            b=counts["B"],
            tie=counts["tie"],
            identical=sum(j.identical for j in self.judgments),
            parse_failures=sum(v.failure == "parse" for v in verdicts),
            backend_failures=sum(v.failure in ("backend", "input") for v in verdicts),
            position_inconsistency_rate=_rate(sum(j.consistent is False for j in both), len(both)),
            flip_rate=_rate(sum(j.flipped for j in both), len(both)),
            first_position_rate=_rate(sum(first_won), len(first_won)),
            guarded=sum(j.guarded for j in self.judgments),
            usage=self.usage,
            cost_usd=None if self.cost is None else round(self.cost, 6),
        )


@dataclass(frozen=True)
class RunSummary:
    """A judging run in figures: verdict counts, failures, position statistics, tokens and cost."""

    pairs: int
    judged: int
    failed: int
    a: int
    b: int
    tie: int
    identical: int
    parse_failures: int
    backend_failures: int
    position_inconsistency_rate: float | None
    flip_rate: float | None
    first_position_rate: float | None
    guarded: int
    usage: Usage
    cost_usd: float | None

    def to_dict(self) -> dict:
        """The figures as JSON (the sides under their names "A" and "B")."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data |= {"A": data.pop("a"), "B": data.pop("b"), "usage": self.usage.to_dict()}
        return data

    def line(self) -> str:
        """One line for the CLI and the Evaluate tab."""
        pct = "n/a" if self.position_inconsistency_rate is None else f"{100 * self.position_inconsistency_rate:.1f}%"
        cost = f", ${self.cost_usd:.4f}" if self.cost_usd is not None else ""
        u = self.usage
        return (
            f"A {self.a}, B {self.b}, tie {self.tie}, no verdict {self.failed} (parse failures "
            f"{self.parse_failures}, failed calls {self.backend_failures}); position inconsistency {pct}; "
            f"{u.calls} calls ({u.cached} cached), {u.input_tokens} in / {u.output_tokens} out tokens{cost}"
        )


def _rate(k: int, n: int) -> float | None:
    return round(k / n, 4) if n else None


def _words(text: str) -> int:
    return len((text or "").split())


# -- the protocol ------------------------------------------------------------------------------------------


def _identical(item: PairItem) -> bool:
    return item.response_a.strip() == item.response_b.strip()


def _judgment(item: PairItem, first: Verdict, second: Verdict, guard: bool) -> PairJudgment:
    if _identical(item):
        return PairJudgment(
            item.key,
            "tie",
            first,
            second,
            True,
            len_a=_words(item.response_a),
            len_b=_words(item.response_b),
            identical=True,
        )
    winner, consistent = combine(first.winner, second.winner)
    flags = {
        side: signals
        for side, text in (("A", item.response_a), ("B", item.response_b))
        if (signals := injection_signals(text))
    }
    guarded = False
    if guard and winner in SIDES and winner in flags and swap(winner) not in flags:
        winner, guarded = "tie", True
    return PairJudgment(
        item.key, winner, first, second, consistent, flags, guarded, _words(item.response_a), _words(item.response_b)
    )


def judge_pairs(
    judge: Judge,
    items: list[PairItem],
    *,
    cache: JudgeCache | None = None,
    concurrency: int = 4,
    progress: ProgressFn | None = None,
    on_judgment: Callable[[PairJudgment], None] | None = None,
    injection_guard: bool = True,
) -> JudgeRun:
    """Judge every pair in both orders. `progress(done_calls, total_calls)` is called as calls finish and
    `on_judgment` as each pair completes (on this thread, so it may write to the store)."""
    if concurrency < 1:
        raise UserError("concurrency must be at least 1")
    calls = [(i, order) for i in range(len(items)) for order in (0, 1)]
    inputs = {}
    for i, item in enumerate(items):
        inputs[(i, 0)] = JudgeInput(item.messages, item.response_a, item.response_b)
        inputs[(i, 1)] = JudgeInput(item.messages, item.response_b, item.response_a)
    use_cache = cache is not None and judge.remote
    keys = {c: JudgeCache.key(judge, inputs[c]) for c in calls} if use_cache else {}
    results: dict[tuple[int, int], Verdict] = {}
    judgments: dict[int, PairJudgment] = {}
    usage = Usage()
    total = len(calls)

    def finish(call: tuple[int, int], verdict: Verdict, how: str = "asked") -> None:
        nonlocal usage
        results[call] = verdict
        if how == "cached":
            usage = usage + Usage(cached=1)
        elif how == "asked":
            usage = usage + verdict.usage
            if use_cache and verdict.ok:
                cache.put(keys[call], judge.name, verdict)  # type: ignore[union-attr]
        i = call[0]
        if (i, 0) in results and (i, 1) in results:
            judgments[i] = _judgment(items[i], results[(i, 0)], results[(i, 1)], injection_guard)
            if on_judgment is not None:
                on_judgment(judgments[i])
        if progress is not None:
            progress(len(results), total)

    if progress is not None:
        progress(0, total)
    pending = []
    for call in calls:
        if _identical(items[call[0]]):
            finish(call, Verdict("tie", "identical responses"), how="skipped")
            continue
        hit = cache.get(keys[call]) if use_cache else None  # type: ignore[union-attr]
        if hit is not None:
            finish(call, hit, how="cached")
        else:
            pending.append(call)

    if judge.remote:
        _run_threaded(judge, pending, inputs, finish, concurrency)
    else:
        size = max(1, judge.batch_size)
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            for call, verdict in zip(chunk, judge.judge_many([inputs[c] for c in chunk])):
                finish(call, verdict)

    ordered = [judgments[i] for i in range(len(items))]
    return JudgeRun(judge.describe(), ordered, usage, judge.cost(usage))


def _run_threaded(judge: Judge, pending: list, inputs: dict, finish: Callable, concurrency: int) -> None:
    def call_one(call):
        try:
            return judge.judge(inputs[call])
        except JudgeError as exc:
            return Verdict(None, error=str(exc), usage=Usage(calls=1), failure="backend")

    queue = list(pending)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"judge-{judge.kind}") as pool:
        running = {}
        try:
            while queue or running:
                while queue and len(running) < concurrency:  # bounded: never more in flight than workers
                    call = queue.pop(0)
                    # in the caller's context: its request budget and its job's cancellation (remote_budget)
                    running[pool.submit(contextvars.copy_context().run, call_one, call)] = call
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    call = running.pop(future)
                    finish(call, future.result())  # a UserError (fatal) propagates and stops the run
        except BaseException:
            queue.clear()
            for future in running:
                future.cancel()
            raise
