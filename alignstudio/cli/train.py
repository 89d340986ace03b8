"""`alignstudio train`: one DPO / KTO / IPO / ORPO / SimPO run in the foreground, with progress.

The run is a folder (`--out DIR`, default a new run under workspace/runs): the same worker process the app
starts runs it (`python -m alignstudio.training.worker DIR`), its output goes to DIR/log.txt and the
metrics lines are printed here. Ctrl-C stops at the next step and keeps a checkpoint; `--resume DIR`
continues. `--print-launch --num-processes N [--deepspeed]` prepares the run folder and prints the
`accelerate launch` command that runs the same worker on several GPUs instead.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..core.errors import UserError
from ..services.training import METHOD_NAMES, RunSpec, form_settings
from .common import add_setting, services

# Per-flag differences from the field (add_setting's overrides): --method and --data have no default (they must
# be given), the list flags say how they are written, and --report-to also takes "none".
FLAG_OVERRIDES = {
    "method": {
        "choices": METHOD_NAMES,
        "metavar": None,
        "default": None,
        "help": "training method (ipo = dpo with loss type ipo; reward = a reward model for `--judge reward`)",
    },
    "data": {"default": None},
    "loss_type": {"help": "comma-separated; " + RunSpec.help("loss_type")},
    "loss_weights": {"help": "comma-separated; " + RunSpec.help("loss_weights")},
    "lora_target_modules": {"help": "comma-separated; " + RunSpec.help("lora_target_modules")},
    "report_to": {"choices": ["none", *form_settings()["report_to"].choices], "metavar": "TRACKER"},
}


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on preference data (DPO, KTO, IPO, ORPO, SimPO)",
        description="Train with TRL in a worker process; LoRA by default. Progress is printed; "
        "the run folder holds the spec, status, metrics, log, checkpoints, the final "
        "model and its card.",
    )
    groups = {"": p}
    for name, s in form_settings().items():  # every RunSpec field with a flag, under its heading
        if s.cli is not None:
            group = groups.get(s.cli) or groups.setdefault(s.cli, p.add_argument_group(s.cli))
            add_setting(group, RunSpec, name, **FLAG_OVERRIDES.get(name, {}))
    p.add_argument("--out", default=None, help="run folder to create (default: a new run under workspace/runs)")
    p.add_argument(
        "--resume",
        metavar="DIR",
        default=None,
        help="continue a cancelled or failed run folder from its last checkpoint",
    )
    p.add_argument(
        "--ignore-validation", action="store_true", help="train even if `alignstudio validate` finds errors in the data"
    )
    s = p.add_argument_group("several GPUs")
    s.add_argument(
        "--print-launch",
        action="store_true",
        help="prepare the run folder and print the `accelerate launch` command instead of training",
    )
    s.add_argument("--num-processes", type=int, default=1, help="GPUs (processes) for --print-launch")
    s.add_argument("--deepspeed", action="store_true", help="use DeepSpeed ZeRO-3 in the printed command")
    p.set_defaults(func=run)


def _local(value: str) -> str:
    """Absolute path for a local file or folder (the worker runs in another directory); names pass through."""
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def spec_from_args(args) -> RunSpec:
    if not args.method:
        raise UserError("--method is required (dpo, kto, ipo, orpo, simpo or reward)")
    if not args.data:
        raise UserError("--data is required (a JSONL/Parquet file or a snapshot folder)")
    if not Path(args.data).expanduser().exists():
        raise UserError(f"--data {args.data} does not exist")
    values = {name: getattr(args, name) for name in form_settings() if hasattr(args, name)}
    return RunSpec.from_values(values | {"model": _local(args.model), "data": _local(args.data)})


def run(args) -> int:
    from ..services.training import foreground

    if args.resume:
        opened = services(args)
        key = str(Path(args.resume).expanduser().resolve())
        opened.runs.resume(key)
    else:
        spec = spec_from_args(args)
        foreground.check_data(spec)  # bad data fails before a run folder is written
        opened = services(args)
        key = opened.runs.start(
            spec,
            override=args.ignore_validation,
            folder=Path(args.out).expanduser().resolve() if args.out else None,
            check_model=not args.print_launch,  # the GPU node resolves it
            warn=lambda text: print(f"warning: {text} (--ignore-validation)"),
        )
        if args.print_launch:
            run_folder = opened.runs.folder(key)
            command = foreground.launch_command(
                run_folder.path, opened.workspace.root, args.num_processes, args.deepspeed
            )
            print(f"# prepared run folder {run_folder.path} (queued); run on the GPU node:")
            print(f"cd {shlex.quote(str(foreground.ACCELERATE_CONFIGS.parents[1]))} && {shlex.join(command)}")
            return 0
    run_folder = opened.runs.folder(key)
    print(f"run folder: {run_folder.path} (log: {run_folder.log_path})", flush=True)
    status = opened.runs.run_foreground(key, on_progress=_progress(foreground.progress_line))
    if status.state == foreground.SUCCEEDED:
        print(
            f"succeeded: model in {status.model_dir}"
            + (f", registered as {status.registered_as}" if status.registered_as else "")
        )
        if status.verdict:
            print(f"verdict: {status.verdict}", flush=True)
        return 0
    if status.state == foreground.CANCELLED:
        print(
            f"cancelled at step {status.step or 0}; continue with: "
            f"alignstudio train --resume {shlex.quote(str(run_folder.path))}",
            file=sys.stderr,
        )
        return 130
    print(f"failed: {status.error}", file=sys.stderr)
    if status.error_tail:
        print(status.error_tail, file=sys.stderr)
    print(f"full log: {run_folder.log_path}", file=sys.stderr)
    return 1


def _progress(line_of):
    def show(rows: list[dict]) -> None:
        for row in rows:
            print(line_of(row), flush=True)

    return show
