"""A real browser: the Train tab's form, filled in, shows the `alignstudio train ...` line that makes the same run,
and that line parses back (through the CLI's parser) to the spec the form's Start would queue."""

import shlex

import pytest
from servers import ROOT, browser_page, running_app

from alignstudio.cli import build_parser
from alignstudio.cli.train import spec_from_args
from alignstudio.training.spec import RunSpec

pytestmark = pytest.mark.browser

PAIRS = ROOT / "data" / "example_preferences.jsonl"


def test_show_command_gives_the_line_that_makes_the_forms_run(tmp_path, tiny_model_dir):
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url), browser_page() as page:
        page.goto(url)
        page.click("button[role='tab']:has-text('Train')")
        page.wait_for_selector("#train-start", state="visible")
        page.click("#train-data-kind label:has-text('File')")
        page.fill("#train-data-file textarea, #train-data-file input", str(PAIRS))
        page.fill("#train-epochs textarea, #train-epochs input", "2")
        page.click("button:has-text('More settings')")
        page.fill("#train-weight-decay input", "0.01")
        page.press("#train-weight-decay input", "Tab")
        page.click("#train-full input")
        page.click("button:has-text('Command line')")
        page.click("#train-show-command")
        page.wait_for_function(
            "(document.querySelector('#train-command')?.innerText || '').includes('alignstudio train')", timeout=30_000
        )
        line = " ".join(page.inner_text("#train-command .cm-content").split("\n"))
    words = shlex.split(line)
    assert words[:2] == ["alignstudio", "train"], line
    spec = spec_from_args(build_parser().parse_args(words[1:]))
    assert spec == RunSpec(
        data=str(PAIRS), model=str(tiny_model_dir), num_train_epochs=2.0, weight_decay=0.01, full=True
    ), line
