"""Small pieces every CLI command uses: its services, the endpoints file, and flags built from the settings
dataclasses."""

from __future__ import annotations

import argparse

from ..services import setting_of
from ..services.judges import endpoints
from ..services.sampling.settings import SamplingSettings


def services(args: argparse.Namespace):
    """The app's services over the `--workspace` folder (`Services.open`). Imported here, when a command runs:
    they bring torch, which `--help` should not wait for."""
    from ..services.container import Services

    return Services.open(getattr(args, "workspace", None))


def workspace(args: argparse.Namespace):
    """The `--workspace` folder (`serve` builds the app's services over it)."""
    from ..services.container import open_workspace

    return open_workspace(getattr(args, "workspace", None))


def add_endpoints_arg(parser, help: str | None = None) -> None:
    """`--endpoints FILE`: named model servers, keys from the environment (judges/endpoints.py)."""
    parser.add_argument(
        "--endpoints",
        default=None,
        metavar="FILE",
        help=help
        or (
            'model servers named in --model as NAME:MODEL, keys from the environment: JSON {"NAME": {"base_url": URL, '
            '"kind": "openai"|"anthropic", "key_env": VAR, "models": [MODEL, ...]}}'
        ),
    )


def configure_endpoints(args: argparse.Namespace) -> None:
    """Load `--endpoints FILE` (none: no named servers), before any model name is resolved."""
    endpoints.configure(endpoints.load_endpoints(args.endpoints) if args.endpoints else {})


def add_setting(parser, cls, name: str, flag: str | None = None, **overrides) -> argparse.Action:
    """`--name-with-dashes` (and the field's `alias`; or `flag` alone) for the setting `cls.name`, its value
    landing in `args.<name>`: the field's default, help (with its range) and type; a bool is a switch (`--x/--no-x`
    where it defaults to on); a list with choices takes several words. `overrides` go to `add_argument` as they
    are (another help, nargs, choices, a different default)."""
    s = setting_of(cls, name)
    flags = (flag,) if flag else s.flags
    bounds = f" ({s.minimum}-{s.maximum})" if s.minimum is not None and s.maximum is not None else ""
    kw: dict = {"dest": name, "default": s.default, "help": (s.help + bounds) or None}
    if s.type is bool:
        kw["action"] = argparse.BooleanOptionalAction if s.default else "store_true"
    else:
        if s.type in (int, float):
            kw["type"] = s.type
        elif s.choices and s.kind.startswith("list["):
            kw |= {"nargs": "+", "choices": list(s.choices)}
        kw["metavar"] = flags[0].lstrip("-").replace("-", "_").upper()  # what argparse shows for a flag's own dest
    return parser.add_argument(*flags, **(kw | overrides))


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    """The flags of a pair's sampling settings (SamplingSettings)."""
    group = parser.add_argument_group("sampling")
    add_setting(group, SamplingSettings, "temperature_a")
    add_setting(group, SamplingSettings, "temperature_b")
    group.add_argument(
        "--temperature", type=float, default=None, help="one temperature for both responses (overrides -a/-b)"
    )
    add_setting(group, SamplingSettings, "similarity_threshold")
    for name in ("top_p", "max_new_tokens", "seed"):
        add_setting(group, SamplingSettings, name)


def sampling_settings(args: argparse.Namespace, **extra) -> SamplingSettings:
    """SamplingSettings from the flags `add_sampling_args` adds."""
    t_a = args.temperature if args.temperature is not None else args.temperature_a
    t_b = args.temperature if args.temperature is not None else args.temperature_b
    return SamplingSettings(
        temperature_a=t_a,
        temperature_b=t_b,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        similarity_threshold=args.similarity_threshold,
        **extra,
    )
