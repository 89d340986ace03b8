"""A trained DPO or KTO run's implicit reward, r(y) = beta * (log pi(y|x) - log pi_ref(y|x)), and the judge on it.

`implicit_reward(generators, run)` is the one place the scorer is built: it resolves the run (a run folder or a
registered version with a run), reads its `RunSpec` and scores with the run's own beta and reference (the model
the run trained from). The implicit judge (`--judge implicit --judge-model RUN`) and the labeling queue's
policy order (`services.labeling.active`, the Label tab and `alignstudio queue --policy RUN`) both use it.
The judge scores each response on its own (policy and reference, in batches) and compares the two rewards, so
it gives the same verdict in both orders by construction; a tie is a margin within `tie_margin`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...core.errors import UserError
from ...training.spec import REFERENCE_METHODS, RunSpec
from . import Judge, JudgeInput, Usage, Verdict


def sequence_logprobs(generator, prompts: list[list[dict]], completions: list[str], batch_size: int = 8) -> np.ndarray:
    """Sum of log-probabilities of each completion after its chat-formatted prompt."""
    import torch

    tokenizer, model = generator.tokenizer, generator.model
    totals = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            rows, spans = [], []
            for messages, completion in zip(
                prompts[start : start + batch_size], completions[start : start + batch_size]
            ):
                prefix = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
                completion_ids = tokenizer(completion + (tokenizer.eos_token or ""), add_special_tokens=False)[
                    "input_ids"
                ]
                rows.append(prefix_ids + completion_ids)
                spans.append((len(prefix_ids), len(prefix_ids) + len(completion_ids)))
            width = max(len(r) for r in rows)
            pad = tokenizer.pad_token_id or 0
            ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
            with generator.decoding():  # one core while a worker trains (core.cpu_share)
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            for i, (begin, end) in enumerate(spans):
                totals.append(float(logp[i, begin - 1 : end - 1].sum()))
    return np.array(totals)


def implicit_rewards(policy, reference, prompts: list[list[dict]], responses: list[str], beta: float) -> np.ndarray:
    """beta * (log pi - log pi_ref) of each response."""
    return beta * (sequence_logprobs(policy, prompts, responses) - sequence_logprobs(reference, prompts, responses))


def implicit_margins(policy, reference, pairs, beta: float = RunSpec.default("beta")) -> np.ndarray:
    """beta * [(log pi - log pi_ref)(A) - (log pi - log pi_ref)(B)] per pair (objects with messages/text_a/text_b)."""
    prompts = [p.messages for p in pairs]
    return implicit_rewards(policy, reference, prompts, [p.text_a for p in pairs], beta) - implicit_rewards(
        policy, reference, prompts, [p.text_b for p in pairs], beta
    )


class ImplicitReward:
    """A run's implicit reward: `rewards(prompts, responses)` per response, and called on pairs (objects with
    messages/text_a/text_b) their margins r(A) - r(B). Built by `implicit_reward`, with the run's beta and
    reference."""

    def __init__(
        self, policy, reference, beta: float, *, run: str = "", folder: Path | None = None, spec: RunSpec | None = None
    ):
        if getattr(policy, "model", None) is None or getattr(reference, "model", None) is None:
            raise UserError("the implicit reward needs local models (their log-probabilities)")
        if beta <= 0:
            raise UserError(f"the implicit reward needs beta > 0, got {beta}")
        self.policy, self.reference, self.beta = policy, reference, float(beta)
        self.run, self.folder, self.spec = run or policy.name, folder, spec

    def rewards(self, prompts: list[list[dict]], responses: list[str]) -> np.ndarray:
        return implicit_rewards(self.policy, self.reference, prompts, responses, self.beta)

    def __call__(self, pairs) -> np.ndarray:
        return implicit_margins(self.policy, self.reference, pairs, self.beta)


def trained_run(registry, run: str) -> tuple[Path, RunSpec]:
    """The folder and `RunSpec` of a finished DPO or KTO run named by a version, a run folder or its model/."""
    folder = find_run_folder(registry, run.strip())
    if folder is None:
        raise UserError(
            f"{run} is not a trained run: its implicit reward needs the run folder (its spec gives beta "
            "and the reference model)"
        )
    spec = RunSpec.load(folder / "spec.json")
    if spec.method not in REFERENCE_METHODS:
        raise UserError(
            f"{run} was trained with {spec.method}; the implicit reward needs a DPO or KTO run "
            "(one trained against a reference)"
        )
    if not (folder / "model").is_dir():
        raise UserError(f"run {folder.name} has no final model yet")
    return folder, spec


def implicit_reward(generators, run: str | None) -> ImplicitReward:
    """The implicit reward of a trained run (a run folder or a version with a run), with the run's own beta and
    reference model: the one way the judge and the labeling queue build it."""
    if not (run or "").strip():
        raise UserError("the implicit reward needs a trained DPO or KTO run (a run folder or version)")
    registry = getattr(generators, "registry", None)
    if registry is None:
        raise UserError("the implicit reward needs the model pool (generators)")
    folder, spec = trained_run(registry, run)
    return ImplicitReward(
        generators.get(str(folder / "model")),
        generators.get(spec.model),
        spec.beta,
        run=folder.name,
        folder=folder,
        spec=spec,
    )


class ScoreJudge(Judge):
    """A judge that scores each response alone and compares: both orders agree by construction. Scores are
    cached by content, so the swapped order costs nothing. Subclasses implement `score(prompts, responses)`."""

    remote = False
    batch_size = 64
    tie_margin: float = 0.0

    def __init__(self, criteria: Sequence[str] | None = None):
        super().__init__(criteria)
        self._scores: dict[str, float] = {}
        self._lock = threading.Lock()

    def score(self, prompts: list[list[dict]], responses: list[str]) -> list[float]:
        raise NotImplementedError

    @staticmethod
    def _key(messages, response: str) -> str:
        return json.dumps([messages, response], sort_keys=True, ensure_ascii=False)

    def scores_for(self, messages_list: list[list[dict]], responses: list[str]) -> list[float]:
        with self._lock:
            missing: dict[str, tuple] = {}
            for messages, response in zip(messages_list, responses):
                key = self._key(messages, response)
                if key not in self._scores:
                    missing[key] = (messages, response)
            if missing:
                values = self.score([m for m, _ in missing.values()], [r for _, r in missing.values()])
                self._scores.update(zip(missing, values))
                if len(self._scores) > 50_000:
                    self._scores.clear()
                    self._scores.update(zip(missing, values))
            return [self._scores[self._key(m, r)] for m, r in zip(messages_list, responses)]

    def judge(self, item: JudgeInput) -> Verdict:
        return self.judge_many([item])[0]

    def judge_many(self, items: list[JudgeInput]) -> list[Verdict]:
        if not items:
            return []
        messages = [it.messages for it in items] * 2
        scores = self.scores_for(messages, [it.response_a for it in items] + [it.response_b for it in items])
        verdicts = []
        for i, _ in enumerate(items):
            a, b = scores[i], scores[len(items) + i]
            diff = a - b
            winner = "tie" if abs(diff) <= self.tie_margin else ("A" if diff > 0 else "B")
            verdicts.append(
                Verdict(
                    winner,
                    f"{self.kind} score A {a:.4f}, B {b:.4f}: difference {diff:+.4f} "
                    f"(tie within {self.tie_margin:.4g})",
                    usage=Usage(calls=1),
                    scores={"score_A": round(a, 6), "score_B": round(b, 6), "margin": round(diff, 6)},
                )
            )
        return verdicts


def find_run_folder(registry, name: str) -> Path | None:
    """The run folder behind a version name, a run folder or its model/ folder (None when there is none)."""
    for version in registry.store.model_versions():
        if version["name"] == name and version.get("run_dir"):
            return Path(version["run_dir"])
    path = Path(name).expanduser()
    for candidate in (path, path.parent):
        if (candidate / "spec.json").is_file():
            return candidate.resolve()
    return None


class ImplicitJudge(ScoreJudge):
    """Scores each response by a run's implicit reward (`implicit_reward`) and compares."""

    kind = "implicit"

    def __init__(self, reward: ImplicitReward, criteria: Sequence[str] | None = None, *, tie_margin: float = 0.0):
        super().__init__(criteria)
        self.reward = reward
        self.policy, self.reference, self.beta = reward.policy, reward.reference, reward.beta
        self.tie_margin = float(tie_margin)
        self.model = reward.run
        self.trained_prompts: set[str] = set()

    def _settings(self) -> dict:
        return {"beta": self.beta, "tie_margin": self.tie_margin, "reference": self.reference.name}

    def score(self, prompts, responses) -> list[float]:
        return [float(x) for x in self.reward.rewards(prompts, responses)]


def make_implicit_judge(run: str | None, generators, criteria=None, tie_margin: float | None = None) -> ImplicitJudge:
    if not (run or "").strip():
        raise UserError("the implicit judge needs a trained DPO run: --judge-model RUN (a run folder or version)")
    reward = implicit_reward(generators, run)
    judge = ImplicitJudge(reward, criteria, tie_margin=tie_margin or 0.0)
    if tie_margin is None:
        judge.tie_margin = calibrated_tie_margin(judge, reward.folder, reward.spec)
    from .independence import run_trained_prompts

    # its agreement with people is measured without them (a data file or a snapshot folder alike)
    judge.trained_prompts = run_trained_prompts(reward.folder, reward.spec)
    return judge


CALIBRATION_FILE = "implicit_judge.json"


def _text(value) -> str:
    return value[-1]["content"] if isinstance(value, list) else str(value)


def calibrated_tie_margin(judge: ImplicitJudge, folder: Path, spec: RunSpec) -> float:
    """The tie margin calibrated on the run's own held-out pairs (the same split by prompt the run evaluated on),
    computed once and kept in the run folder. 0 when the run had no held-out pairs."""
    path = folder / CALIBRATION_FILE
    if path.is_file():
        return float(json.loads(path.read_text(encoding="utf-8"))["tie_margin"])
    from ...training.data import load_training_data
    from ...training.reward import calibrate_tie_margin
    from ...training.split import split_by_prompt

    try:  # the rows exactly as the run read them, so the split is the run's own
        rows = load_training_data(spec.data or "", "dpo").dataset.to_list()
    except UserError:  # the data moved or holds no pairs (KTO): nothing to calibrate on
        rows = []
    heldout = split_by_prompt(rows, spec.heldout_fraction, spec.seed).heldout
    diffs: list[float] = []
    if heldout:
        prompts = [
            [{"role": "user", "content": r["prompt"]}] if isinstance(r["prompt"], str) else r["prompt"] for r in heldout
        ]
        scores = judge.scores_for(
            prompts * 2, [_text(r["chosen"]) for r in heldout] + [_text(r["rejected"]) for r in heldout]
        )
        diffs = [c - r for c, r in zip(scores[: len(heldout)], scores[len(heldout) :])]
    margin = calibrate_tie_margin(diffs)
    accuracy = round(sum(d > 0 for d in diffs) / len(diffs), 4) if diffs else None
    path.write_text(
        json.dumps({"tie_margin": margin, "heldout_pairs": len(diffs), "heldout_accuracy": accuracy}, indent=2),
        encoding="utf-8",
    )
    return margin
