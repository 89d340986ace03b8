"""`alignstudio export-model RUN --out DIR`: a trained model as a self-contained folder (adapter or merged)."""

from __future__ import annotations

from .common import services


def register(sub) -> None:
    p = sub.add_parser(
        "export-model",
        help="write a trained model as a self-contained folder",
        description="Copies a run's adapter (its config names a portable base: the hub id of the "
        "embedded model) or, with --merged, the merged weights, plus the tokenizer, chat "
        "template, model card (README.md) and run card into a new folder.",
    )
    p.add_argument("model", help="a run folder, a registered model version or a model folder")
    p.add_argument("--out", required=True, help="folder to create (must not exist, or be empty)")
    p.add_argument(
        "--merged",
        action="store_true",
        help="fold the adapter into its base: exactly the weights that were trained, loadable without "
        "PEFT (the embedded base is a dequantized GGUF, not the hub's weights)",
    )
    p.add_argument(
        "--dtype", choices=["float32", "bfloat16", "float16"], default="float32", help="weights' dtype with --merged"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from ..services.training.model_export import export_model

    folder = export_model(services(args).registry, args.model, args.out, merged=args.merged, dtype=args.dtype)
    files = sorted(p.name for p in folder.iterdir())
    print(f"exported {args.model} to {folder}: {', '.join(files)}")
    return 0
