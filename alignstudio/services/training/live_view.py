"""What the Train tab's live view holds for one run, typed (`LiveRun`), so a tab never reads a run card or compares
state strings: status, metrics, log, diagnostics, verdict, the schedule used, the held-out split and the reward
model's held-out measures. Read from a run folder through the RunManager (`LiveRun.read`); `RunsService.live`
is the door that checks the caller first."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ...training.diagnostics import diagnose_spec, expected_first_loss
from ...training.reward import HeldoutReport
from ...training.run_folder import FINISHED, RUNNING, SUCCEEDED, RunStatus
from ...training.spec import RunSpec
from ...training.verdict import LEARNED, Verdict, judge_spec

if TYPE_CHECKING:
    from ...training.run_queue import RunManager

REWARD_USABLE = 0.6  # a reward model's held-out pairwise accuracy from which it is offered as a judge

_VERDICT_FIELDS = {f.name for f in fields(Verdict)}


@dataclass(frozen=True)
class ScheduleUsed:
    """The schedule a run trained with (chosen from the data unless set), from its card."""

    learning_rate: float
    batch_size: int
    epochs: float
    warmup_steps: int


@dataclass(frozen=True)
class BeforeAfter:
    """A held-out prompt answered by the base and by the trained model (same seed)."""

    prompt: str
    base: str
    trained: str


@dataclass
class LiveRun:
    """One run as the live view shows it: typed, so a tab never reads a run card or a state string."""

    name: str
    status: RunStatus
    spec: RunSpec
    rows: list[dict]  # training and held-out metrics lines
    log: str  # the log's last lines
    expected_start: float | None  # the loss of a policy equal to its reference (ln 2 for sigmoid DPO)
    findings: list = field(default_factory=list)  # diagnostics of the metrics so far
    verdict: Verdict | None = None  # a succeeded run's verdict (a reward run's from its card)
    schedule: ScheduleUsed | None = None
    heldout_note: str = ""  # how the labels were split into training and held-out pairs
    before_after: list[BeforeAfter] = field(default_factory=list)
    reward_result: HeldoutReport | None = None  # a finished reward run's held-out measures

    @property
    def reward(self) -> bool:
        return self.spec.method == "reward"

    @property
    def running(self) -> bool:
        return self.status.state == RUNNING

    @property
    def succeeded(self) -> bool:
        return self.status.state == SUCCEEDED

    @property
    def learned(self) -> bool:
        return self.verdict is not None and self.verdict.code == LEARNED

    @property
    def reward_usable(self) -> bool:
        """A reward model whose held-out accuracy is beyond chance at its count (its verdict), or, for a card
        from before reward verdicts, at least REWARD_USABLE."""
        if self.reward and self.verdict is not None:
            return self.verdict.code == LEARNED
        return self.reward_result is not None and (self.reward_result.accuracy or 0.0) >= REWARD_USABLE

    @classmethod
    def read(cls, runs: RunManager, name: str, log_lines: int = 60) -> LiveRun:
        """Run `name` as it is now (UserError for an unknown one); the caller has checked who asks."""
        status, spec = runs.status(name), runs.spec(name)
        rows = runs.all_metrics(name)
        card = (runs.card(name) or {}) if status.state in FINISHED else {}
        view = cls(
            name,
            status,
            spec,
            rows,
            runs.log_tail(name, log_lines),
            expected_first_loss(spec.method, spec.loss_type, spec.beta, spec.label_smoothing),
        )
        view._from_card(card)
        if rows:
            view.findings = diagnose_spec(rows, spec)
            verdict = card.get("verdict") if status.state == SUCCEEDED else None
            if verdict:  # fields a newer card has and this code does not know are left out
                view.verdict = Verdict(**{k: v for k, v in verdict.items() if k in _VERDICT_FIELDS})
            elif status.state == SUCCEEDED and not view.reward:
                view.verdict = judge_spec(rows, spec)
        return view

    def _from_card(self, card: dict) -> None:
        """The card's parts the live view shows, as typed fields."""
        schedule = card.get("schedule")
        if schedule:
            self.schedule = ScheduleUsed(
                schedule["learning_rate"],
                schedule["batch_size"],
                schedule["num_train_epochs"],
                schedule["warmup_steps"],
            )
        self.heldout_note = ((card.get("dataset") or {}).get("heldout") or {}).get("note", "")
        self.before_after = [BeforeAfter(r["prompt"], r["base"], r["trained"]) for r in card.get("before_after") or []]
        reward = card.get("reward") or {}
        if "accuracy" in reward or "note" in reward:
            measures: dict[str, Any] = {f.name: reward.get(f.name) for f in fields(HeldoutReport)}
            self.reward_result = HeldoutReport(**measures)
