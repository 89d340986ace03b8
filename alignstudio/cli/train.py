"""`alignstudio train`: one DPO / KTO / IPO / ORPO / SimPO run in the foreground, with progress.

The run is a folder (`--out DIR`, default a new run under workspace/runs): the same worker process the app
starts runs it (`python -m alignstudio.training.worker DIR`), its output goes to DIR/log.txt and the
metrics lines are printed here. Ctrl-C stops at the next step and keeps a checkpoint; `--resume DIR`
continues. `--print-launch --num-processes N [--deepspeed]` prepares the run folder and prints the
`accelerate launch` command that runs the same worker on several GPUs instead.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..core.errors import UserError
from ..core.store import Store
from ..services.data.checks import gate_training_data
from ..training.spec import METHOD_ALIASES, METHODS, RunSpec
from ..training.trackers import TRACKERS
from .common import workspace

ACCELERATE_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on preference data (DPO, KTO, IPO, ORPO, SimPO)",
                       description="Train with TRL in a worker process; LoRA by default. Progress is printed; "
                                   "the run folder holds the spec, status, metrics, log, checkpoints, the final "
                                   "model and its card.")
    p.add_argument("--method", choices=[*METHODS, *METHOD_ALIASES], default=None,
                   help="training method (ipo = dpo with loss type ipo; reward = a reward model for `--judge reward`)")
    p.add_argument("--data", help=RunSpec.help("data"))
    p.add_argument("--model", default="smollm2", help=RunSpec.help("model"))
    p.add_argument("--out", default=None, help="run folder to create (default: a new run under workspace/runs)")
    p.add_argument("--resume", metavar="DIR", default=None,
                   help="continue a cancelled or failed run folder from its last checkpoint")
    p.add_argument("--ignore-validation", action="store_true",
                   help="train even if `alignstudio validate` finds errors in the data")
    g = p.add_argument_group("training settings")
    g.add_argument("--max-steps", type=int, default=None, help=RunSpec.help("max_steps"))
    g.add_argument("--epochs", type=float, default=None, help=RunSpec.help("num_train_epochs"))
    g.add_argument("--beta", type=float, default=0.1, help=RunSpec.help("beta"))
    g.add_argument("--loss-type", default=None, help="comma-separated; " + RunSpec.help("loss_type"))
    g.add_argument("--loss-weights", default=None, help="comma-separated; " + RunSpec.help("loss_weights"))
    g.add_argument("--label-smoothing", type=float, default=0.0, help=RunSpec.help("label_smoothing"))
    g.add_argument("--simpo-gamma", type=float, default=0.5, help=RunSpec.help("simpo_gamma"))
    g.add_argument("--lr", type=float, default=None, help=RunSpec.help("learning_rate"))
    g.add_argument("--batch-size", type=int, default=None, help=RunSpec.help("batch_size"))
    g.add_argument("--warmup-steps", type=int, default=None, help=RunSpec.help("warmup_steps"))
    g.add_argument("--grad-accum", type=int, default=1, help=RunSpec.help("grad_accum"))
    g.add_argument("--max-length", type=int, default=512, help=RunSpec.help("max_length"))
    g.add_argument("--seed", type=int, default=42, help=RunSpec.help("seed"))
    g.add_argument("--full", action="store_true", help=RunSpec.help("full"))
    g.add_argument("--lora-r", type=int, default=16, help=RunSpec.help("lora_r"))
    g.add_argument("--lora-alpha", type=int, default=32, help=RunSpec.help("lora_alpha"))
    g.add_argument("--lora-dropout", type=float, default=0.05, help=RunSpec.help("lora_dropout"))
    h = p.add_argument_group("held-out labels")
    h.add_argument("--heldout-fraction", type=float, default=0.2, help=RunSpec.help("heldout_fraction"))
    h.add_argument("--early-stopping", action=argparse.BooleanOptionalAction, default=True,
                   help=RunSpec.help("early_stopping"))
    h.add_argument("--patience", type=int, default=3, help=RunSpec.help("patience"))
    h.add_argument("--compare-prompts", type=int, default=3, help=RunSpec.help("compare_prompts"))
    g.add_argument("--save-steps", type=int, default=50, help=RunSpec.help("save_steps"))
    g.add_argument("--precision", default="auto", help=RunSpec.help("precision"))
    g.add_argument("--gradient-checkpointing", action="store_true", help=RunSpec.help("gradient_checkpointing"))
    g.add_argument("--precompute-ref-log-probs", action=argparse.BooleanOptionalAction, default=True,
                   help=RunSpec.help("precompute_ref_log_probs"))
    g.add_argument("--register-as", default=None, help=RunSpec.help("register_as"))
    g.add_argument("--report-to", nargs="+", default=[], choices=["none", *TRACKERS], metavar="TRACKER",
                   help=RunSpec.help("report_to"))
    s = p.add_argument_group("several GPUs")
    s.add_argument("--print-launch", action="store_true",
                   help="prepare the run folder and print the `accelerate launch` command instead of training")
    s.add_argument("--num-processes", type=int, default=1, help="GPUs (processes) for --print-launch")
    s.add_argument("--deepspeed", action="store_true", help="use DeepSpeed ZeRO-3 in the printed command")
    p.set_defaults(func=run)


def _local(value: str) -> str:
    """Absolute path for a local file or folder (the worker runs in another directory); names pass through."""
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def _floats(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--loss-weights must be comma-separated numbers, got {text!r}") from None


def spec_from_args(args) -> RunSpec:
    if not args.method:
        raise UserError("--method is required (dpo, kto, ipo, orpo, simpo or reward)")
    if not args.data:
        raise UserError("--data is required (a JSONL/Parquet file or a snapshot folder)")
    if not Path(args.data).expanduser().exists():
        raise UserError(f"--data {args.data} does not exist")
    return RunSpec(
        method=args.method, model=_local(args.model), data=_local(args.data),
        loss_type=[x.strip() for x in args.loss_type.split(",") if x.strip()] if args.loss_type else None,
        loss_weights=_floats(args.loss_weights), beta=args.beta, label_smoothing=args.label_smoothing,
        simpo_gamma=args.simpo_gamma, learning_rate=args.lr, num_train_epochs=args.epochs, max_steps=args.max_steps,
        batch_size=args.batch_size, warmup_steps=args.warmup_steps, heldout_fraction=args.heldout_fraction,
        early_stopping=args.early_stopping, patience=args.patience, compare_prompts=args.compare_prompts,
        grad_accum=args.grad_accum, max_length=args.max_length, seed=args.seed,
        full=args.full, lora_r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        save_steps=args.save_steps, precision=args.precision, gradient_checkpointing=args.gradient_checkpointing,
        precompute_ref_log_probs=args.precompute_ref_log_probs, register_as=args.register_as,
        report_to=args.report_to,
    )


def check_inputs(spec: RunSpec, ws, store: Store, resolve_model: bool = True) -> None:
    """Bad data or an unknown model fail here, before a run folder is written."""
    from ..training.data import load_training_data

    if spec.method == "reward":
        from ..training.reward import check_reward_data

        check_reward_data(spec.data)
    load_training_data(spec.data, spec.method)
    if resolve_model:
        from ..core.registry import ModelRegistry

        ModelRegistry(ws, store).resolve(spec.model)


def launch_command(run_dir: Path, workspace_root: Path, num_processes: int, deepspeed: bool) -> list[str]:
    """The `accelerate launch` command that runs the worker on `num_processes` GPUs."""
    if num_processes < 1:
        raise UserError("--num-processes must be at least 1")
    config = ACCELERATE_CONFIGS / ("deepspeed_zero3.yaml" if deepspeed else "multi_gpu.yaml")
    return ["accelerate", "launch", "--config_file", str(config), "--num_processes", str(num_processes),
            "-m", "alignstudio.training.worker", str(run_dir), "--workspace", str(workspace_root)]


def _progress(rows: list[dict]) -> None:
    from ..training.metrics import MetricsCallback

    for row in rows:
        print(MetricsCallback.progress_line(row), flush=True)


def run(args) -> int:
    from ..training.run_folder import CANCELLED, SUCCEEDED
    from ..training.run_queue import RunManager

    ws = workspace(args)
    store = Store(ws.db_path)
    manager = RunManager(ws, store, autostart=False)
    if args.resume:
        run_folder = manager.folder(str(Path(args.resume).expanduser().resolve()))
        manager.resume(str(run_folder.path), start=False)
    else:
        spec = spec_from_args(args)
        check_inputs(spec, ws, store, resolve_model=not args.print_launch)
        report = gate_training_data(spec.data, override=args.ignore_validation)
        if report.has_errors:
            print(f"warning: training despite {report.counts()['error']} validation error(s) (--ignore-validation)")
        if args.print_launch:
            target = Path(args.out).expanduser().resolve() if args.out else None
            run_folder = manager.create(spec, folder=target)
            command = launch_command(run_folder.path, ws.root, args.num_processes, args.deepspeed)
            print(f"# prepared run folder {run_folder.path} (queued); run on the GPU node:")
            print(f"cd {shlex.quote(str(ACCELERATE_CONFIGS.parents[1]))} && {shlex.join(command)}")
            return 0
        if args.out:
            run_folder = manager.create(spec, folder=Path(args.out).expanduser().resolve())
        else:
            run_folder = manager.create(spec)
    print(f"run folder: {run_folder.path} (log: {run_folder.log_path})", flush=True)
    status = manager.run_foreground(run_folder, on_progress=_progress)
    state = status.state
    if state == SUCCEEDED:
        print(f"succeeded: model in {status.model_dir}"
              + (f", registered as {status.registered_as}" if status.registered_as else ""))
        if status.verdict:
            print(f"verdict: {status.verdict}", flush=True)
        return 0
    if state == CANCELLED:
        print(f"cancelled at step {status.step or 0}; continue with: "
              f"alignstudio train --resume {shlex.quote(str(run_folder.path))}", file=sys.stderr)
        return 130
    print(f"failed: {status.error}", file=sys.stderr)
    if status.error_tail:
        print(status.error_tail, file=sys.stderr)
    print(f"full log: {run_folder.log_path}", file=sys.stderr)
    return 1
