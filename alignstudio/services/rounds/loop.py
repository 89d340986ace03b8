"""The round loop of iterative alignment (the seed's Recipe 2): sample from the current policy, judge, filter,
train, evaluate against the SFT model, and go again from the new policy.

Owns the round loop and what it writes into its folder (folder.py): ROUNDS_DIR/round-N/{pairs.jsonl, round.json,
eval.json} and ROUNDS_DIR/rounds.json (one line of results per round, rewritten after each round so a UI can poll
it).
A round is a chain of the stages' own services, one step function each: `sample_round` (sampler.sample_pairs,
pairs stored unlabeled) -> `judge_round` (judges.protocol.judge_pairs, verdicts stored as the judge's
preferences) -> `training_rows` (DPO rows of the decisive, usable pairs: pairs.jsonl) -> `train_round` (the
training queue's worker) -> `evaluate_round` (evaluation.evaluate: eval.json). Each round's LoRA adapter is
merged into a full checkpoint so the next round trains a fresh adapter on it, with the merged policy as its
reference. It knows no model internals, no trainer and no UI.

The judge is measured against held-out human labels before it drives a round (`judges.trust`): at chance it is
refused unless forced, and the figures (and a forced judge's warning) go into rounds.json and every eval.json.
With no judge named, the newest trained reward model judges (offline, no network). `retrain_judge` retrains
the reward model after each round on the human labels plus the pairs it judged so far. It is off by default:
the judge would then learn from its own verdicts and confirm its own mistakes, and it costs a training run
per round; the human labels stay the only ground truth unless you ask for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...core.errors import UserError
from ...core.formats import PromptItem, write_records
from ...core.models import DEFAULT_MODEL
from ...core.registry import ModelRegistry
from ...core.store import Store
from ...core.workspace import Workspace
from ...training.run_folder import SUCCEEDED
from ...training.run_queue import RunManager
from ...training.spec import RunSpec
from ..consensus import human_consensus
from ..data.snapshots import dpo_row
from ..evaluation import EvalReport, EvalSettings, evaluate, save_report
from ..judges import Judge
from ..judges.bulk import store_verdict
from ..judges.config import JudgeConfig, build_judge
from ..judges.protocol import PairItem, PairJudgment, judge_pairs
from ..judges.trust import Trust, vet_judge
from ..sampling.generators import GeneratorPool
from ..sampling.sampler import SampledPair, sample_pairs
from ..sampling.settings import SamplingSettings
from .folder import ci_text, fixed, read_rounds, write_status
from .settings import RoundsSettings

MIN_CHARS = 10  # the validator's "short response" limit: such pairs teach nothing


def keep_pair(text_a: str, text_b: str, winner: str | None) -> str | None:
    """Why a judged pair is dropped (None = keep): ties, parse failures, empty or identical answers."""
    if winner not in ("A", "B"):
        return "tie or no verdict"
    if len(text_a.strip()) < MIN_CHARS or len(text_b.strip()) < MIN_CHARS:
        return "short or empty answer"
    if text_a.strip() == text_b.strip():
        return "identical answers"
    return None


def human_pairs(store: Store) -> list[dict]:
    """The human consensus of every decisively labeled pair, as prompt/chosen/rejected rows."""
    consensus = human_consensus(store.preference_rows())
    rows = []
    for pair in store.pairs():
        verdict = consensus.get(pair.id)
        if verdict in ("A", "B"):
            chosen, rejected = (pair.text_a, pair.text_b) if verdict == "A" else (pair.text_b, pair.text_a)
            rows.append(dpo_row(pair.messages, chosen, rejected))
    return rows


@dataclass
class _Loop:
    """What every round shares: the models, the judge (and how far people trust it), the training queue, the
    folder, the rows of rounds.json so far and every pair kept so far (the data of `retrain_judge`)."""

    store: Store
    settings: RoundsSettings
    folder: Path
    say: Callable[[str], None]
    registry: ModelRegistry
    pool: GeneratorPool
    runs: RunManager
    sft: str
    judge: Judge
    trust: Trust
    policy: str
    rows: list[dict] = field(default_factory=list)
    judged: list[dict] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return self.folder.name

    def fail(self, number: int, row: dict, error: str) -> UserError:
        """Record a round that stopped (rounds.json says failed) and the error to raise."""
        row["error"] = error
        self.rows.append(row)
        write_status(self.folder, self.rows, "failed", error)
        return UserError(f"round {number}: {error}")


def _open_loop(
    workspace: Workspace,
    store: Store,
    base_model: str,
    settings: RoundsSettings,
    folder: Path,
    say: Callable[[str], None],
) -> _Loop:
    """Resolve the SFT model, choose the judge and measure it against people (`judges.trust`) before round 1."""
    registry = ModelRegistry(workspace, store)
    pool = GeneratorPool(registry)
    sft = registry.resolve(base_model).name
    # the one way to build a judge (an admin check, a no-op in this CLI process; none named = the best available)
    judge = build_judge(
        JudgeConfig(kind=settings.judge or None, model=settings.judge_model), store=store, generators=pool
    )
    if settings.retrain_judge and judge.kind != "reward":
        raise UserError("retrain_judge applies to the reward judge only")
    trust = vet_judge(judge, store, force=settings.force_judge)
    say(trust.line())
    if trust.warning:
        say(trust.warning)
    runs = RunManager(workspace, store, autostart=False)
    return _Loop(store, settings, folder, say, registry, pool, runs, sft, judge, trust, policy=sft)


def sample_round(loop: _Loop, number: int, prompts: list[PromptItem]) -> list[tuple[str, SampledPair]]:
    """This round's prompts (the next `pairs_per_round` of the set, wrapping round), each sampled twice from
    the current policy (`sampler.sample_pairs`, batched across prompts) and stored unlabeled, as the Label tab
    stores what it shows."""
    settings = loop.settings
    start = (number - 1) * settings.pairs_per_round
    chosen = [prompts[(start + i) % len(prompts)] for i in range(settings.pairs_per_round)]
    loop.say(f"round {number}: sampling {len(chosen)} pairs from {loop.policy}")
    generator = loop.pool.get(loop.policy)
    sampling = SamplingSettings(max_new_tokens=settings.max_new_tokens, seed=settings.seed + 1000 * number)
    sampled = []
    for pair in sample_pairs([item.messages for item in chosen], sampling, generator):
        if pair is not None:
            pair_id = loop.store.add_pair(
                pair.messages,
                pair.text_a,
                pair.text_b,
                model_a=loop.policy,
                model_b=loop.policy,
                params_a=pair.params_a,
                params_b=pair.params_b,
                prompt_set=f"{loop.tag}-round-{number}",
                origin="rounds",
            )
            sampled.append((pair_id, pair))
    return sampled


def judge_round(loop: _Loop, number: int, sampled: list[tuple[str, SampledPair]]) -> dict[str, PairJudgment]:
    """Every pair judged in both orders (`judges.protocol.judge_pairs`); each verdict is stored as the judge's
    preference label by the same function bulk judging uses (`judges.bulk.store_verdict`)."""
    judge = loop.judge
    loop.say(f"round {number}: judging {len(sampled)} pairs with {judge.name} (both orders)")
    items = [PairItem(pid, p.messages, p.text_a, p.text_b) for pid, p in sampled]
    verdicts = {j.key: j for j in judge_pairs(judge, items).judgments}
    for pid, _ in sampled:
        store_verdict(loop.store, judge, verdicts[pid])
    return verdicts


def training_rows(
    sampled: list[tuple[str, SampledPair]], verdicts: dict[str, PairJudgment]
) -> tuple[list[dict], dict[str, int]]:
    """The judged pairs as DPO rows (`data.snapshots.dpo_row`, the rows of a DPO snapshot), and how many were
    dropped for which reason (`keep_pair`)."""
    kept, dropped = [], {}
    for pid, pair in sampled:
        winner = verdicts[pid].winner
        reason = keep_pair(pair.text_a, pair.text_b, winner)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        chosen, rejected = (pair.text_a, pair.text_b) if winner == "A" else (pair.text_b, pair.text_a)
        kept.append(dpo_row(pair.messages, chosen, rejected))
    return kept, dropped


def train_round(loop: _Loop, number: int, data: Path, row: dict) -> str:
    """DPO from the current policy on this round's pairs, through the training queue's worker (this process
    waits for it, as `alignstudio train` does); returns the run's name."""
    settings = loop.settings
    loop.say(f"round {number}: training DPO on {row['kept']} pairs from {loop.policy}")
    spec = RunSpec(
        method="dpo",
        model=loop.policy,
        data=str(data),
        beta=settings.beta,
        max_steps=settings.max_steps,
        learning_rate=settings.learning_rate,
        max_length=settings.max_length,
        batch_size=settings.batch_size,
        seed=settings.seed + number,
        save_steps=settings.max_steps or 50,
        report_to=list(settings.report_to),
    )
    run = loop.runs.create(spec, f"{loop.tag}-round-{number}")
    status = loop.runs.run_foreground(run)
    if status.state != SUCCEEDED:
        raise loop.fail(number, row, f"training {run.name} ended {status.state}: {status.error}")
    return run.name


def evaluate_round(loop: _Loop, number: int, eval_prompts: list[PromptItem], round_dir: Path) -> EvalReport:
    """The new policy against the SFT model on held-out prompts (`evaluation.evaluate`), saved as eval.json."""
    settings = loop.settings
    loop.say(f"round {number}: evaluating {loop.policy} against {loop.sft} on {settings.eval_limit} held-out prompts")
    report = evaluate(
        loop.pool.get(loop.policy),
        loop.pool.get(loop.sft),
        eval_prompts,
        loop.judge,
        settings=EvalSettings(
            max_new_tokens=settings.max_new_tokens, limit=settings.eval_limit, seed=settings.seed, perplexity=False
        ),
        trust=loop.trust,
    )
    save_report(report, round_dir / "eval.json")
    return report


def _one_round(loop: _Loop, number: int, prompts: list[PromptItem], eval_prompts: list[PromptItem]) -> None:
    """Sample -> judge -> keep -> train -> merge -> evaluate; the round's row joins rounds.json."""
    from ...training.merge import merge_adapter

    settings = loop.settings
    round_dir = loop.folder / f"round-{number}"
    round_dir.mkdir(exist_ok=True)
    sampled = sample_round(loop, number, prompts)
    kept, dropped = training_rows(sampled, judge_round(loop, number, sampled))
    row = {
        "round": number,
        "policy": loop.policy,
        "judge": loop.judge.source,
        "judge_trust": loop.trust.line(),
        "sampled": len(sampled),
        "kept": len(kept),
        "dropped": dropped,
    }
    loop.judged += kept
    if len(kept) < 2:
        raise loop.fail(number, row, "fewer than 2 usable pairs: raise pairs_per_round or the sampling temperature")
    run_name = train_round(loop, number, write_records(kept, round_dir / "pairs.jsonl"), row)
    loop.policy = merge_adapter(loop.registry, run_name).name
    metrics = loop.runs.metrics(run_name)
    results = evaluate_round(loop, number, eval_prompts, round_dir).results
    row |= {
        "run": run_name,
        "policy_after": loop.policy,
        "final_loss": metrics[-1].get("loss") if metrics else None,
        "win_rate": results.win_rate,
        "win_rate_ci": results.win_rate_ci,
        "lc_win_rate": results.lc_win_rate,
        "wins": results.wins,
        "ties": results.ties,
        "losses": results.losses,
    }
    (round_dir / "round.json").write_text(json.dumps(row | {"settings": asdict(settings)}, indent=2))
    loop.rows.append(row)
    write_status(loop.folder, loop.rows, "running" if number < settings.rounds else "succeeded", f"round {number} done")
    loop.say(f"round {number}: win rate vs SFT {fixed(results.win_rate, 2)} (95% CI {ci_text(row)})")
    if settings.retrain_judge and number < settings.rounds:
        name = _retrain_reward(loop, round_dir, number)
        loop.judge = build_judge(JudgeConfig(kind="reward", model=name), store=loop.store, generators=loop.pool)
        loop.trust = vet_judge(loop.judge, loop.store, force=settings.force_judge)
        loop.say(loop.trust.line())


def _retrain_reward(loop: _Loop, round_dir: Path, number: int) -> str:
    """A new reward model on the human labels plus the judged pairs so far; returns its version name."""
    settings, tag = loop.settings, loop.tag
    rows = human_pairs(loop.store) + loop.judged
    data = write_records(rows, round_dir / "judge-data.jsonl")
    base = loop.judge.meta.get("base") or DEFAULT_MODEL
    loop.say(f"round {number}: retraining the reward judge on {len(rows)} pairs ({len(rows) - len(loop.judged)} human)")
    spec = RunSpec(
        method="reward",
        model=base,
        data=str(data),
        max_steps=settings.judge_steps,
        learning_rate=1e-4,
        max_length=settings.max_length,
        batch_size=4,
        seed=settings.seed + number,
        save_steps=settings.judge_steps,
        register_as=f"{tag}-judge-{number}",
        report_to=list(settings.report_to),
    )
    run = loop.runs.create(spec, f"{tag}-judge-{number}")
    status = loop.runs.run_foreground(run)
    if status.state != SUCCEEDED:
        raise UserError(f"round {number}: retraining the reward judge ended {status.state}: {status.error}")
    return status.registered_as


def run_rounds(
    workspace: Workspace,
    store: Store,
    base_model: str,
    prompts: list[PromptItem],
    eval_prompts: list[PromptItem],
    settings: RoundsSettings,
    folder: Path,
    *,
    say: Callable[[str], None] = print,
) -> list[dict]:
    """Every round in turn, each training from the policy the one before it trained; the rows of rounds.json."""
    folder.mkdir(parents=True, exist_ok=True)
    loop = None
    try:
        if not prompts or not eval_prompts:
            raise UserError("rounds need a prompt set and an evaluation prompt set")
        loop = _open_loop(workspace, store, base_model, settings, folder, say)
        write_status(folder, loop.rows, "running", "starting", loop.trust.to_dict())
        for number in range(1, settings.rounds + 1):
            _one_round(loop, number, prompts, eval_prompts)
    except Exception as exc:  # whatever stopped the rounds (at the start too): rounds.json says failed, and why
        if (read_rounds(folder) or {}).get("state") != "failed":  # `_Loop.fail` records its own
            error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            write_status(folder, loop.rows if loop else [], "failed", error)
        raise
    return loop.rows
