"""`python app.py --help` documents every flag the app takes, `--workspace` included, and it still works both
before and after the command name."""

import subprocess
import sys

from servers import ROOT

from alignstudio.cli import build_parser


def test_app_help_lists_the_workspace_flag():
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--workspace" in result.stdout and "runtime state folder" in result.stdout


def test_the_workspace_is_read_before_and_after_serve(tmp_path):
    before = build_parser(["--workspace", "a", "serve"]).parse_args(["--workspace", "a", "serve"])
    after = build_parser(["serve", "--workspace", "b"]).parse_args(["serve", "--workspace", "b"])
    neither = build_parser(["serve"]).parse_args(["serve"])
    assert (before.workspace, after.workspace, neither.workspace) == ("a", "b", None)
