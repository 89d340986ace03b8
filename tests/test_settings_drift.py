"""Each operation's settings are written once, in their dataclass: the CLI flags and the app's controls must show
the same defaults and bounds (this test fails when one of them is written again and drifts)."""

from __future__ import annotations

import dataclasses

import pytest

from alignstudio.cli import build_parser
from alignstudio.core.settings import setting_of
from alignstudio.services.evaluation import EvalSettings
from alignstudio.services.judges.config import JudgeConfig
from alignstudio.services.sampling.settings import SamplingSettings


def _defaults(command: str) -> dict:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {a.dest: a.default for a in sub.choices[command]._actions}


JUDGE_FLAGS = {
    "judge": "kind",
    "judge_model": "model",
    "judge_base_url": "base_url",
    "api_key_env": "key_env",
    "force_judge": "force",
    "concurrency": "concurrency",
    "timeout": "timeout",
    "max_retries": "max_retries",
    "price_in": "price_in",
    "price_out": "price_out",
    "injection_guard": "injection_guard",
}


def _default(cls, name):
    return next(f for f in dataclasses.fields(cls) if f.name == name).default


def test_cli_flag_defaults_are_the_dataclass_defaults():
    sample = _defaults("sample")
    for name in (
        "temperature_a",
        "temperature_b",
        "top_p",
        "max_new_tokens",
        "seed",
        "similarity_threshold",
        "system_a",
        "system_b",
    ):
        assert sample[name] == _default(SamplingSettings, name), name
    for command in ("eval", "generate"):
        flags = _defaults(command)
        for name in ("max_new_tokens", "temperature", "top_p", "seed", "limit"):
            assert flags[name] == _default(EvalSettings, name), (command, name)
    assert _defaults("eval")["batch_size"] == EvalSettings().batch_size
    assert _defaults("eval")["perplexity"] is EvalSettings().perplexity
    for command in ("eval", "judge"):
        flags = _defaults(command)
        for flag, name in JUDGE_FLAGS.items():
            assert flags[flag] == _default(JudgeConfig, name), (command, flag)
    assert EvalSettings().concurrency == JudgeConfig().concurrency
    assert EvalSettings().injection_guard == JudgeConfig().injection_guard


@pytest.fixture
def services(tmp_path, tiny_model_dir):
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services

    services = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir))
    yield services
    services.close()


def test_app_controls_show_the_dataclass_defaults_and_bounds(services):
    import gradio as gr

    from alignstudio.ui import evaluate
    from alignstudio.ui.common import sampling_controls

    with gr.Blocks():
        pair = sampling_controls(services, "drift", pair=True)
        single = sampling_controls(services, "drift1", pair=False)
        view = evaluate.build(services)
    for name in ("temperature_a", "temperature_b", "top_p", "max_new_tokens", "system_a", "system_b"):
        control, s = getattr(pair, name), setting_of(SamplingSettings, name)
        assert control.value == s.default, name
        if isinstance(control, gr.Number):
            assert control.maximum == s.maximum, name
    assert single.temperature_a.value == SamplingSettings().temperature_a
    assert pair.temperature_a.minimum == setting_of(SamplingSettings, "temperature_a").minimum
    assert view.max_new_tokens.value == EvalSettings().max_new_tokens
    assert view.max_new_tokens.maximum == setting_of(EvalSettings, "max_new_tokens").maximum
    assert view.limit.value == setting_of(EvalSettings, "limit").start == 20
    assert view.perplexity.value is EvalSettings().perplexity
    assert view.seed.placeholder == str(EvalSettings().seed)
    assert view.judge_kind.value == "auto" and view.force_judge.value is JudgeConfig().force
    assert view.concurrency.value == JudgeConfig().concurrency
    # the handlers' empty fields fall back to the same defaults
    assert evaluate.eval_settings(None, None, "", True) == EvalSettings(limit=None)
    assert evaluate.judge_config("rules", "", "", "", "").concurrency == JudgeConfig().concurrency
