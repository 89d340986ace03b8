"""`alignstudio live`: the live loop headless, with an AI judge instead of a person.

A live session's trainer starts from --model (a LoRA policy, loaded once); pairs are sampled from its newest
version, judged in both orders by the judge (measured against the human labels first, as everywhere), and every
decisive verdict becomes a label; each --every K labels a burst trains the policy in the background while the next
pairs are sampled and judged. At the end the last labels get a burst of their own, the versions and bursts are
printed (and written to --out), and the trainer stops.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from ..core.errors import UserError
from ..services.live import AGAINST_BASE, POLICY, LiveSettings
from ..services.sampling.prompt_sets import SHIPPED
from .common import add_sampling_args, sampling_settings, services
from .judge import add_judge_args, judge_config, vet

EMPTY_ROUNDS = 3  # rounds in a row without one decisive verdict: the judge cannot drive this loop


def register(sub) -> None:
    p = sub.add_parser(
        "live",
        help="the live loop headless: a policy trained in bursts while a judge labels its pairs",
        description=__doc__,
    )
    defaults = LiveSettings()
    p.add_argument("--model", default=defaults.model, help="the model the live policy starts from")
    p.add_argument("--prompts", default=str(SHIPPED["default"]), help="prompts to sample pairs for (JSONL)")
    p.add_argument("--name", default=None, help="the session's name (default: cli-DATE-TIME)")
    p.add_argument("--labels", type=int, default=48, help="decisive labels to collect (default 48)")
    p.add_argument("--every", type=int, default=defaults.every, help="a burst every K labels (default %(default)s)")
    p.add_argument("--steps", type=int, default=defaults.steps, help="training steps per burst (default %(default)s)")
    p.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="default %(default)s")
    p.add_argument("--beta", type=float, default=defaults.beta, help="DPO beta (default %(default)s)")
    p.add_argument("--replay", type=int, default=defaults.replay, help="learned labels replayed per burst")
    p.add_argument(
        "--drift-budget",
        type=float,
        default=defaults.drift_budget,
        help="percent rise of the held-out text's perplexity a burst may cause (0 = off; default %(default)s)",
    )
    p.add_argument(
        "--heldout-fraction", type=float, default=defaults.heldout_fraction, help="of the prompts (default %(default)s)"
    )
    p.add_argument(
        "--pairs",
        choices=[POLICY, AGAINST_BASE],
        default=defaults.pairs,
        help="both answers from the policy, or one from the policy and one from the base",
    )
    p.add_argument("--out", default=None, help="write the versions and bursts here (JSON)")
    add_judge_args(p)
    add_sampling_args(p)
    p.set_defaults(func=run)


def _settings(args) -> LiveSettings:
    if args.labels < 1:
        raise UserError("--labels must be at least 1")
    return LiveSettings(
        model=args.model,
        every=args.every,
        steps=args.steps,
        learning_rate=args.learning_rate,
        beta=args.beta,
        replay=args.replay,
        heldout_fraction=args.heldout_fraction,
        pairs=args.pairs,
        drift_budget=args.drift_budget,
    ).check()


def run(args) -> int:
    from ..services.judges.bulk import store_verdict
    from ..services.judges.protocol import JudgeCache, PairItem, judge_pairs
    from ..services.live.service import LiveLabel, LiveService
    from ..services.sampling.prompt_sets import load_prompts

    settings = _settings(args)
    sampling = sampling_settings(args)
    prompts = load_prompts(args.prompts)
    if not prompts:
        raise UserError(f"--prompts {args.prompts} has no prompts")
    opened = services(args)
    config = judge_config(args)
    judge = opened.evaluation.judge(config)
    vet(config, judge, opened.store, JudgeCache.for_workspace(opened.workspace))  # measured before it labels
    live = LiveService(opened.workspace, opened.store, opened.generators)
    name = args.name or time.strftime("cli-%Y%m%d-%H%M%S")
    try:
        live.start(name, settings)
        print(f"live session {name}: loading {settings.model} ...", flush=True)
        live.wait(name)
        labeled, offset, empty, seen_bursts = 0, 0, 0, 0
        while labeled < args.labels:
            want = min(settings.every, args.labels - labeled)
            batch = [prompts[(offset + i) % len(prompts)].messages for i in range(want)]
            offset += want
            pairs = [p for p in live.sample_pairs(name, batch, sampling) if p is not None]
            items = [PairItem(p.pair_id, p.messages, p.text_a, p.text_b) for p in pairs]
            verdicts = {j.key: j for j in judge_pairs(judge, items, concurrency=config.concurrency).judgments}
            labels = []
            for pair in pairs:
                judgment = verdicts[pair.pair_id]
                store_verdict(opened.store, judge, judgment)
                if judgment.winner in ("A", "B"):
                    chosen, rejected = (
                        (pair.text_a, pair.text_b) if judgment.winner == "A" else (pair.text_b, pair.text_a)
                    )
                    labels.append(LiveLabel(pair.messages, chosen, rejected, pair.pair_id))
            empty = 0 if labels else empty + 1
            if empty >= EMPTY_ROUNDS:
                raise UserError(
                    f"{judge.name} gave no decisive verdict on {EMPTY_ROUNDS} rounds of pairs: it cannot drive "
                    "the live loop (choose another judge)"
                )
            status = live.add_labels(name, labels)
            labeled = status.labels
            print(f"labels {labeled}/{args.labels} (pairs from v{pairs[0].version if pairs else '?'})", flush=True)
            seen_bursts = _report_bursts(live, name, seen_bursts)
        if live.status(name).labels % settings.every:
            live.burst(name)  # the last labels, short of K, get their burst too
        print("waiting for the last burst ...", flush=True)
        live.wait(name)
        _report_bursts(live, name, seen_bursts)
        live.stop(name)
        _summary(live, name, args.out)
    finally:
        live.close()
    return 0


def _report_bursts(live, name: str, seen: int) -> int:
    bursts = live.bursts(name)
    for row in bursts[seen:]:
        print(f"burst {row['burst']}: {row['outcome']}: {row['note']} ({row['seconds']:.1f} s)", flush=True)
    return len(bursts)


def _summary(live, name: str, out: str | None) -> None:
    versions = live.versions(name)
    print("version  labels learned  held-out loss  held-out accuracy")
    for v in versions:
        loss = "-" if v.heldout_loss is None else f"{v.heldout_loss:.4f}"
        accuracy = "-" if v.heldout_accuracy is None else f"{v.heldout_accuracy:.2f}"
        tag = f"v{v.number}" + (" *" if v.current else "")  # * the version the policy is at
        print(f"{tag:>7}  {v.labels_learned:>14}  {loss:>13}  {accuracy:>17}")
    if out:
        path = Path(out).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        payload = {
            "session": name,
            "status": asdict(live.status(name)),
            "versions": [asdict(v) for v in versions],
            "bursts": live.bursts(name),
        }
        partial.write_text(json.dumps(payload, indent=1))
        partial.replace(path)
        print(f"wrote {path}", flush=True)
