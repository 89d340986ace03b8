"""A judge's settings (`JudgeConfig`) and the one way to build the judge they describe (`build_judge`).

The CLI's judge flags and the Evaluate tab's judge controls are built from `JudgeConfig`'s fields, and both
hand the config to `build_judge`. A config from the web form (`from_form`, `untrusted`) is treated as untrusted: a typed
URL is checked and gets only the key typed with it; a configured endpoint picked by name gets the server's key.
The API key is never part of the config's repr or `to_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core import access
from ...core.settings import setting
from ...core.store import Store
from . import KINDS, Judge, make_judge
from .prompt import clean_criteria

AUTO = "auto"  # the best judge available (see `trust.choose_judge`)


@dataclass(frozen=True)
class JudgeConfig:
    """Which judge, where, and how it is called. kind None (or "auto") = the best available."""

    kind: str | None = setting(
        None,
        label="Judge backend",
        form_default=AUTO,
        help=f"{' | '.join(KINDS)} (vllm / ollama / llamacpp: an OpenAI-compatible server); "
        "default: the newest trained reward model, else the server in ALIGNSTUDIO_JUDGE",
    )
    model: str | None = setting(
        None,
        label="Judge model",
        help="judge model: reward = reward version or folder (default the newest); implicit "
        "= a DPO run; local = registry name or folder (default smollm2); remote = model id",
    )
    base_url: str | None = setting(
        None,
        label="Server: a configured endpoint, or a base URL (http://HOST:PORT/v1)",
        help="server URL for an OpenAI-compatible or proxy API",
    )
    key_env: str | None = setting(
        None, help="environment variable holding the key (default OPENAI_API_KEY / ANTHROPIC_API_KEY)"
    )
    api_key: str | None = setting(None, label="API key for a typed URL (never stored)", repr=False)
    criteria: tuple[str, ...] | None = setting(
        None, label="Judge criteria (one per line)", help="judge criteria (default: helpfulness, accuracy, clarity)"
    )
    force: bool = setting(
        False,
        label="Use the judge even if it is at chance against people (reports say so)",
        help="use a judge even if its measured agreement with people is at chance (its reports then carry a warning)",
    )
    timeout: float = setting(60.0, help="seconds per remote request", minimum=0.001)
    max_retries: int = setting(3, help="SDK retries on 429 / 5xx / timeouts", minimum=0)
    price_in: float | None = setting(None, help="dollars per million input tokens (cost count)")
    price_out: float | None = setting(None, help="dollars per million output tokens")
    concurrency: int = setting(
        4, label="Remote requests in flight", help="remote requests in flight at once", minimum=1, maximum=64
    )
    injection_guard: bool = setting(
        True,
        help="the injection guard: a response that tries to instruct the judge "
        "loses (--no-injection-guard lets it win, for testing judges)",
    )
    untrusted: bool = False  # typed in the web form: the URL is checked, the server's keys are not sent to it

    @classmethod
    def from_form(
        cls,
        kind: str | None,
        model: str | None,
        base_url: str | None,
        api_key: str | None,
        criteria,
        force: bool = False,
        **options,
    ) -> "JudgeConfig":
        """The config the Evaluate tab's controls describe (criteria: text, one per line; empty = defaults)."""
        text = "\n".join(criteria) if isinstance(criteria, (list, tuple)) else (criteria or "")
        return cls(
            kind=(kind or "").strip() or None,
            model=(model or "").strip() or None,
            base_url=(base_url or "").strip() or None,
            api_key=api_key or None,
            criteria=tuple(clean_criteria(text)) if text.strip() else None,
            force=bool(force),
            untrusted=True,
            **options,
        )

    @property
    def auto(self) -> bool:
        return (self.kind or AUTO).strip().lower() == AUTO

    def to_dict(self) -> dict:
        """The settings without the key."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "api_key"}


def build_judge(
    config: JudgeConfig, *, store: Store | None, generators=None, default_model: str | None = None
) -> Judge:
    """The judge `config` describes, for the CLI and every tab that picks one: none named = the best available
    (`trust.choose_judge`); the local judge defaults to `default_model` (else smollm2). The key goes to the SDK
    client only."""
    access.require_admin("judges")
    from . import endpoints
    from .trust import choose_judge
    from .typed_urls import check, connect_only_to, typed_key

    kind, model, base_url, api_key, key_env = config.kind, config.model, config.base_url, config.api_key, config.key_env
    configured = endpoints.named(base_url) if config.untrusted else None
    target = None  # a typed URL, checked: the SDK client connects only to the address the check approved
    if configured is not None:  # picked by name: the operator's URL, with the key from the server's environment
        base_url, key_env, api_key = configured.base_url, configured.key_env, None
        kind = configured.kind if config.auto or kind in ("openai", "anthropic") else kind
    elif base_url and config.untrusted:
        target = check(base_url)
        base_url, api_key = target.url, typed_key(api_key)
    if (kind or AUTO).strip().lower() == AUTO:
        kind, model, default_url = choose_judge(None, model, store)
        base_url = base_url or default_url
    if kind == "local" and not model:
        model = default_model
    if configured is not None and not configured.key_env:
        api_key = typed_key(None)  # the endpoint needs no key: none from the environment either
    with connect_only_to(target):
        return make_judge(
            kind,
            model=model,
            base_url=base_url,
            api_key=api_key or None,
            criteria=config.criteria,
            generators=generators,
            timeout=config.timeout,
            max_retries=config.max_retries,
            price_in=config.price_in,
            price_out=config.price_out,
            key_env=key_env,
        )
