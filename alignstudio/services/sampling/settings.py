"""The settings of a pair's sampling (A and B): what the CLI's flags and the app's controls are built from.

Kept apart from the sampler (sampler.py) so that reading them imports neither torch nor transformers: every
CLI command builds its parser from settings like these before it knows what it will run."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ...core.errors import UserError
from ...core.settings import check_bounds, setting


@dataclass(frozen=True)
class SamplingSettings:
    """Two sampling settings (A and B) for a pair; the seed article samples at 0.7 and 1.0. Each field holds
    its default, bounds and help; the CLI flags and the app's controls are built from them."""

    temperature_a: float = setting(
        0.7, label="Temperature A", help="temperature of response A", minimum=0.05, maximum=2.0, step=0.05
    )
    temperature_b: float = setting(
        1.0, label="Temperature B", help="temperature of response B", minimum=0.05, maximum=2.0, step=0.05
    )
    top_p: float = setting(
        0.95, label="top_p", help="nucleus sampling: the smallest set of tokens with this mass", maximum=1.0, step=0.01
    )
    max_new_tokens: int = setting(
        128, label="Max new tokens", help="tokens generated per response at most", minimum=1, maximum=2048
    )
    seed: int | None = setting(None, label="Seed", help="make the run reproducible (empty = random)")
    similarity_threshold: float = setting(
        0.9,
        label="Similarity threshold",
        maximum=1.0,
        help="resample a pair whose responses are more similar than this (0-1)",
    )
    max_attempts: int = setting(3, help="resampling tries before the prompt is skipped", minimum=1)
    # synthetic pairs: each side answers under its own system prompt ("" = the prompt as it is)
    system_a: str = setting(
        "", label="System prompt A (synthetic pairs; empty = none)", help="system prompt of response A"
    )
    system_b: str = setting("", label="System prompt B", help="system prompt of response B")

    def __post_init__(self):
        check_bounds(self, "temperature_a", "temperature_b", "max_new_tokens")
        if not 0.0 < self.top_p <= 1.0:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.0 < self.similarity_threshold <= 1.0:
            raise UserError(f"similarity_threshold must be in (0, 1], got {self.similarity_threshold}")
        if self.max_attempts < 1:
            raise UserError("max_attempts must be at least 1")
        for name in ("system_a", "system_b"):
            if len(getattr(self, name)) > 20_000:
                raise UserError(f"{name} is longer than 20,000 characters")
        if self.system_a.strip() and self.system_a.strip() == self.system_b.strip():
            raise UserError("the two system prompts are the same; a synthetic pair needs two different ones")

    def params(self, side: str, gen=None, seed: int | None = None) -> dict:
        """What is recorded with each generation (its own temperature and system prompt, the shared rest, the
        seed of the call), and which of them `gen` could not apply (a remote protocol without them)."""
        temperature = self.temperature_a if side == "A" else self.temperature_b
        params = {
            "temperature": temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed if seed is None else seed,
        }
        system = self.system(side)
        not_applied = list(getattr(gen, "params_not_sent", ()))
        return (
            params
            | ({"system_prompt": system} if system else {})
            | ({"not_applied": not_applied} if not_applied else {})
        )

    def system(self, side: str) -> str:
        return (self.system_a if side == "A" else self.system_b).strip()

    def to_dict(self) -> dict:
        return asdict(self)
