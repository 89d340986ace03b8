"""Capability checks through lm-evaluation-harness: the shipped 20-question local task scored on a trained run's
LoRA adapter and on its base, the delta with its standard error in the run card, the model card and the Train tab;
the DPO guide's 5% drop named; bad input refused by field; the install line where lm-eval is missing."""

import json
import sys

import pytest
from servers import cli

from alignstudio.core.errors import UserError
from alignstudio.services.evaluation import capabilities, lm_harness
from alignstudio.services.evaluation.capabilities import CapabilityReport, CapabilityScore, CapabilitySettings
from alignstudio.training.card import write_card
from alignstudio.training.run_folder import QUEUED, RUNNING, SUCCEEDED, RunFolder
from alignstudio.training.spec import RunSpec
from alignstudio.ui import train

pytestmark = pytest.mark.slow


def trained_run(services, base_dir, name="cap-run", method="dpo"):
    """A finished run as the worker leaves it: a LoRA adapter on `base_dir` (random B, so it changes the
    model), registered under the run's name, with its run card."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    spec = RunSpec(method=method, model=str(base_dir), data="pairs.jsonl")
    run = RunFolder.create(services.workspace.runs_dir / name, spec)
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), config).save_pretrained(run.model_dir)
    services.store.register_model(name, run.model_dir, kind="adapter", base=str(base_dir), run_dir=run.path)
    run.transition(RUNNING, expect=QUEUED)
    run.transition(SUCCEEDED, expect=RUNNING, step=4, model_dir=str(run.model_dir), registered_as=name)
    card = {"run": name, "method": method, "spec": spec.to_dict(), "base_model": {"name": str(base_dir)}}
    write_card(run.card_path, card)
    return run


def test_capability_check_scores_the_base_and_the_adapter_and_every_card_shows_the_delta(services, tiny_model_dir):
    import lm_eval

    run = trained_run(services, tiny_model_dir)
    report, plan = capabilities.check(services, "cap-run", CapabilitySettings())
    assert (plan.trained, plan.base, plan.run_dir) == ("cap-run", str(tiny_model_dir), run.path)
    assert report.state == "done" and {s.metric for s in report.scores} == {"acc", "acc_norm"}
    for score in report.scores:
        assert score.task == "alignstudio_basics" and score.n == 20
        assert score.delta == pytest.approx(score.trained - score.base)
        assert score.delta_stderr is not None and score.base_stderr is not None
    # the base's score is lm-eval's own for that checkpoint, loaded its own way (model="hf")
    own = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(tiny_model_dir)},
        device="cpu",
        tasks=[lm_harness._local_config(_yaml(), capabilities.TASKS_FOLDER)],
        verbosity="ERROR",
    )
    acc = next(s for s in report.scores if s.metric == "acc")
    assert acc.base == pytest.approx(own["results"]["alignstudio_basics"]["acc,none"])
    # kept with the run: capabilities.json, the run card, the model card, the Train tab's run view
    kept = json.loads((run.path / "capabilities.json").read_text())
    assert kept["state"] == "done" and kept["scores"][0]["delta"] == pytest.approx(report.scores[0].delta)
    assert json.loads(run.card_path.read_text())["capabilities"]["verdict"] == report.verdict
    readme = (run.model_dir / "README.md").read_text()
    shown = f"{100 * acc.delta:+.1f}"
    assert "## Capability checks (lm-evaluation-harness)" in readme and f"| {shown}" in readme
    tab = train.capabilities_markdown(services, "cap-run")
    assert "alignstudio_basics" in tab and f"| {shown}" in tab and "5% threshold" in tab


def _yaml():
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(capabilities.TASKS_FOLDER / "basics.yaml", resolve_func=True)


def test_a_drop_beyond_five_points_is_named_with_whether_it_is_beyond_noise():
    def report(*scores):
        return CapabilityReport("trained", "base", "t", state="done", scores=list(scores))

    small = CapabilityScore("t", "acc", 0.60, 0.57, 0.02, 0.02, 0.01, 200)
    assert not small.dropped and "No drop beyond the DPO guide's 5% threshold" in report(small).verdict
    big = CapabilityScore("t", "acc", 0.60, 0.50, 0.02, 0.02, 0.02, 200)
    assert big.dropped and big.beyond_noise and big.delta == pytest.approx(-0.10)
    verdict = report(small, big).verdict
    assert "Capability drop beyond the DPO guide's 5% threshold: t acc 0.600 -> 0.500 (-10.0 points, " in verdict
    assert "beyond 2 standard errors" in verdict and "higher beta" in verdict
    noisy = CapabilityScore("t", "acc", 0.60, 0.50, 0.1, 0.1, 0.14, 20)
    assert noisy.dropped and not noisy.beyond_noise and "within 2 standard errors" in report(noisy).verdict
    # a metric that is no [0, 1] score: 5% of the base's value, and a rise is a drop where lower is better
    worse = CapabilityScore("t", "perplexity", 10.0, 10.6, None, None, None, 20, higher_is_better=False)
    assert worse.dropped and worse.change == "+0.6 (+6.0%)" and "perplexity 10.000 -> 10.600" in report(worse).verdict
    assert not CapabilityScore("t", "perplexity", 10.0, 10.4, None, None, None, 20, higher_is_better=False).dropped
    shown = "\n".join(capabilities.capability_lines(report(worse).to_dict()))
    assert "| t | perplexity | 10 ± n/a | 10.6 ± n/a | +0.6 **drop** |" in shown
    assert CapabilityReport.from_dict(report(big).to_dict()).scores == [big]


def test_bad_input_is_refused_naming_the_field(services, tiny_model_dir, tmp_path):
    trained_run(services, tiny_model_dir)
    trained_run(services, tiny_model_dir, name="rm-run", method="reward")
    with pytest.raises(UserError, match="Capability tasks: unknown lm-eval task"):
        capabilities.check(services, "cap-run", CapabilitySettings(tasks="no_such_task_anywhere"))
    with pytest.raises(UserError, match="Capability tasks: .* is not a folder of lm-eval task YAML"):
        capabilities.check(services, "cap-run", CapabilitySettings(tasks=str(tmp_path / "nothing") + "/"))
    with pytest.raises(UserError, match="Capability tasks: name at least one"):
        CapabilitySettings(tasks=" , ")
    with pytest.raises(UserError, match="Baseline"):
        capabilities.check(services, str(tiny_model_dir), CapabilitySettings())
    with pytest.raises(UserError, match="Run: choose a finished run"):
        train.check_capabilities(services, None, "alignstudio_basics", None)
    with pytest.raises(UserError, match="Questions per task"):
        train.check_capabilities(services, "cap-run", "alignstudio_basics", "0")
    with pytest.raises(UserError, match="reward model is a judge"):
        train.check_capabilities(services, "rm-run", "alignstudio_basics", None)
    assert not (services.workspace.runs_dir / "cap-run" / "capabilities.json").exists()  # nothing changed


def test_without_lm_eval_the_button_and_the_check_say_how_to_install_it(services, tiny_model_dir, monkeypatch):
    trained_run(services, tiny_model_dir)
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if the optional package were not installed
    assert not capabilities.available()
    with pytest.raises(UserError, match="pip install lm-eval==0.4.13"):
        train.check_capabilities(services, "cap-run", "alignstudio_basics", None)
    assert "pip install lm-eval==0.4.13" in train.capabilities_button_label()


def test_the_train_tab_button_runs_the_check_in_the_background(services, tiny_model_dir):
    from stand_in_worker import wait_for

    run = trained_run(services, tiny_model_dir)
    note = train.check_capabilities(services, "cap-run", "alignstudio_basics", 5)
    assert "started" in note and "cap-run" in note
    with pytest.raises(UserError, match="already running"):
        train.check_capabilities(services, "cap-run", "alignstudio_basics", 5)
    wait_for(lambda: capabilities.latest(services, "cap-run").state != "running", timeout=120)
    report = capabilities.latest(services, "cap-run")
    assert report.state == "done", report.error
    assert {s.n for s in report.scores} == {5} and "capabilities" in json.loads(run.card_path.read_text())


def test_cli_eval_capabilities_prints_the_side_by_side_table(services, tiny_model_dir):
    run = trained_run(services, tiny_model_dir)
    done = cli(
        "eval",
        "--capabilities",
        "alignstudio_basics",
        "--model",
        "cap-run",
        "--capability-limit",
        "4",
        workspace=services.workspace.root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| alignstudio_basics | acc |" in done.stdout and "5% threshold" in done.stdout
    assert json.loads((run.path / "capabilities.json").read_text())["scores"][0]["n"] == 4
    missing = cli("eval", "--model", "cap-run", workspace=services.workspace.root)
    assert missing.returncode == 2 and "--prompts" in missing.stderr
