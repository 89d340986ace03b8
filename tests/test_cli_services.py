"""The services a CLI command opens (`Services.open`) are the app's, with the CLI's two differences: nothing is
loaded before a command names it, and a training run starts only when the command runs it in the foreground."""

import json
import re

import pytest
from servers import ROOT

from alignstudio.core import access
from alignstudio.core.errors import UserError
from alignstudio.services.container import Services
from alignstudio.services.training import RunSpec

PAIRS = ROOT / "data" / "example_preferences.jsonl"


@pytest.fixture
def opened(tmp_path):
    services = Services.open(str(tmp_path / "ws"))
    yield services
    services.runs.manager.close()  # a worker started by mistake does not outlive the test
    services.close()


def test_open_makes_the_workspace_and_loads_no_model(opened, tmp_path):
    assert opened.workspace.root == (tmp_path / "ws").resolve() and opened.workspace.db_path.exists()
    assert opened.default_model == "smollm2"  # a name: resolving it would convert the embedded model
    assert not list(opened.workspace.models_dir.iterdir())
    assert opened.evaluation.generators is opened.generators and opened.data.store is opened.store


def test_a_run_queued_by_the_cli_waits_for_its_foreground_launch(opened, tiny_model_dir):
    """`alignstudio train` queues through `services.runs.start`, then launches the run itself: were the queue to start
    it too, two workers would train one folder."""
    name = opened.runs.start(RunSpec(method="dpo", model=str(tiny_model_dir), data=str(PAIRS), max_steps=1))
    assert opened.runs.manager.status(name).state == "queued"
    assert opened.runs.manager.busy() is None


def test_start_writes_a_run_outside_the_workspace_and_warns_of_an_override(opened, tiny_model_dir, tmp_path):
    data = tmp_path / "same.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {"prompt": f"Question {i}?", "chosen": f"Answer {i} in full.", "rejected": f"Answer {i} in full."}
            )
            + "\n"
            for i in range(3)
        )
    )
    spec = RunSpec(method="dpo", model=str(tiny_model_dir), data=str(data))
    with pytest.raises(UserError, match="validation error"):
        opened.runs.start(spec, folder=tmp_path / "blocked")
    assert not (tmp_path / "blocked").exists()
    heard = []
    key = opened.runs.start(spec, override=True, folder=tmp_path / "outside", warn=heard.append)
    assert key == str(tmp_path / "outside") and (tmp_path / "outside" / "spec.json").is_file()
    assert len(heard) == 1 and re.fullmatch(r"training despite \d+ validation error\(s\)", heard[0])
    assert opened.runs.manager.status(key).state == "queued" and not list(opened.workspace.runs_dir.iterdir())


def test_print_launch_leaves_the_model_to_the_gpu_node(opened, tmp_path):
    spec = RunSpec(method="dpo", model="a-model-only-the-gpu-node-has", data=str(PAIRS))
    with pytest.raises(UserError, match="unknown model"):
        opened.runs.start(spec, folder=tmp_path / "here")
    assert opened.runs.start(spec, folder=tmp_path / "there", check_model=False) == str(tmp_path / "there")


def test_limit_access_allows_the_workspace_the_default_model_and_the_named_folders(
    tmp_path, tiny_model_dir, second_tiny_model_dir
):
    services = Services.build(Services.open(str(tmp_path / "ws")).workspace, default_model=str(tiny_model_dir))
    try:
        services.limit_access(allow_paths=[tmp_path / "extra"])
        with access.acting_as(access.caller_for(None)):
            for allowed in (services.workspace.root / "x.jsonl", tiny_model_dir, tmp_path / "extra" / "y"):
                access.check_typed_path(allowed)
            with pytest.raises(UserError, match="outside the workspace"):
                access.check_typed_path(second_tiny_model_dir)
        services.limit_access(role_of=lambda name: "annotator")
        with access.acting_as(access.caller_for("ann")):
            assert not access.is_admin()
    finally:
        access.reset()
        services.runs.manager.close()
        services.close()
