"""Bad input beyond file parsing: model folders, control characters, HTML in text, full or unwritable storage.
Each case is one clear UserError, and nothing changes."""

import json

import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.formats import MAX_FILE_BYTES, MAX_LINE_BYTES, load_preferences, load_prompts, read_records
from alignstudio.core.models import check_model_folder
from alignstudio.core.registry import ModelRegistry
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.ui.render import escape_markdown_html


def test_pickle_weights_are_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(UserError, match="only pickle weights.*safetensors only"):
        check_model_folder(folder)


@pytest.mark.parametrize(
    "files, message",
    [
        ({}, "no \\*.safetensors"),
        ({"model.safetensors": b""}, "no config.json"),
    ],
)
def test_incomplete_model_folders(tmp_path, files, message):
    folder = tmp_path / "model"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    with pytest.raises(UserError, match=message):
        check_model_folder(folder)


def test_unknown_model_name(workspace, store):
    with pytest.raises(UserError, match="unknown model 'gpt-17'"):
        ModelRegistry(workspace, store).resolve("gpt-17")


def test_control_characters_are_refused(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "hello\u0000world"}) + "\n")
    with pytest.raises(UserError, match="line 1: field 'prompt' contains control character U\\+0000"):
        load_prompts(path)
    path.write_text(
        json.dumps({"prompt": [{"role": "user", "content": "bell\u0007"}], "chosen": "a", "rejected": "b"}) + "\n"
    )
    with pytest.raises(UserError, match="U\\+0007"):
        load_preferences(path)


def test_a_line_over_the_line_cap_is_refused_by_name(tmp_path):
    path = tmp_path / "p.jsonl"
    with open(path, "wb") as handle:
        handle.write(b'{"prompt": "fine"}\n{"prompt": "')
        handle.write(b"x" * MAX_LINE_BYTES)
        handle.write(b'"}\n')
    with pytest.raises(UserError, match=f"p.jsonl, line 2: the line is longer than {MAX_LINE_BYTES:,} bytes"):
        load_prompts(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_file_over_the_file_cap_is_refused_before_reading(tmp_path, suffix):
    path = tmp_path / f"big{suffix}"
    with open(path, "wb") as handle:  # sparse: takes no disk, and is refused from its size alone
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(UserError, match=f"big{suffix}: 1,073,741,825 bytes is over the"):
        read_records(path)


def test_rtl_emoji_and_newlines_are_fine(tmp_path):
    path = tmp_path / "p.jsonl"
    text = "שלום 👋🏽 مرحبا\n\ttabbed"
    path.write_text(json.dumps({"prompt": text}) + "\n")
    assert load_prompts(path)[0].text == text


@pytest.mark.parametrize(
    "raw, shown, hidden",
    [
        ("<script>alert(1)</script>", "&lt;script&gt;", "<script>"),
        ('<img src=x onerror="alert(1)">', "&lt;img", "<img"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d", "<"),
    ],
)
def test_html_in_model_output_is_escaped(raw, shown, hidden):
    rendered = escape_markdown_html(raw)
    assert shown in rendered and hidden not in rendered


def test_code_blocks_keep_their_characters():
    text = "Use `a < b` or:\n```python\nif x < 3 and y > 2:\n    pass\n```\nthen <b>bold</b>"
    rendered = escape_markdown_html(text)  # code is written as HTML, escaped: the browser shows its characters
    assert "<code>a &lt; b</code>" in rendered and "<pre><code>if x &lt; 3 and y &gt; 2:" in rendered
    assert "&lt;b&gt;bold" in rendered  # (tests/test_browser_render.py checks what Chromium shows)


def test_full_disk_is_one_clear_error_and_nothing_half_written(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    pair = store.add_pair([{"role": "user", "content": "q"}], "a", "b", model_a="m", model_b="m")
    pages = store._conn().execute("PRAGMA page_count").fetchone()[0]
    store._conn().execute(f"PRAGMA max_page_count={pages}")  # the database file cannot grow: a full disk
    before = store.event_count()
    with pytest.raises(UserError, match="could not be written"):
        store.import_preferences(
            [
                {"messages": [{"role": "user", "content": f"q{i}"}], "chosen": "x" * 5000, "rejected": "y" * 5000}
                for i in range(50)
            ]
        )
    assert store.event_count() == before and len(store.labels()) == 0
    store.add_preference(pair, "A")  # small writes that fit still work afterwards
    assert len(store.labels()) == 1


_FILE_SIZE_LIMIT_WRITER = """
import json, resource, signal, sys
from pathlib import Path
from alignstudio.core.errors import UserError
from alignstudio.core.store import Store

path = Path(sys.argv[1])
store = Store(path)
pair = store.add_pair([{"role": "user", "content": "q"}], "a", "b", model_a="m", model_b="m")
for i in range(5):
    store.add_preference(pair, "A", annotator="ann", rationale=f"earlier {i}")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit write() fails with EFBIG instead of killing us
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
limit = max(p.stat().st_size for p in path.parent.iterdir()) + 8192
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
out = {"limit": limit, "wal_before": path.with_name(path.name + "-wal").stat().st_size}
try:
    # 400 kB fits the page cache, so its pages are first written at COMMIT, and the WAL hits the limit there
    store.add_preference(pair, "B", annotator="ann", rationale="too big " + "x" * 400_000)
    out["error"] = None
except UserError as exc:
    out["error"] = str(exc)
out["wal_after"] = path.with_name(path.name + "-wal").stat().st_size
out["labels_then"] = [label.rationale for label in store.labels()]
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # the disk has room again
store.add_preference(pair, "tie", annotator="ann", rationale="after")
print(json.dumps(out))
"""


def test_disk_full_at_commit_for_real_is_one_clear_error(tmp_path):
    """A real file-size limit (RLIMIT_FSIZE): the WAL write at COMMIT fails with EFBIG part way through a label."""
    import subprocess
    import sys

    from servers import ROOT

    path = tmp_path / "ws" / "s.sqlite"
    result = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT_WRITER, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["error"] and "could not be written" in out["error"] and "\n" not in out["error"]
    assert out["wal_before"] < out["wal_after"] == out["limit"]  # the commit's frames ran into the limit
    earlier = [f"earlier {i}" for i in range(5)]
    assert out["labels_then"] == earlier  # the failed label is not there, the earlier ones are
    store = Store(path)  # a fresh process's view of the file
    try:
        assert [label.rationale for label in store.labels()] == earlier + ["after"]
        assert store.integrity_ok()
    finally:
        store.close()


def test_unwritable_workspace_is_one_clear_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the workspace should be")
    with pytest.raises(UserError, match="not writable"):
        Workspace.open(blocker / "ws")


def test_api_nulls_for_text_fields_are_empty_text_or_one_clear_error(tmp_path, tiny_model_dir):
    """An API client may send null where the browser sends "": a missing reason is no reason, a missing
    annotator is the same clear error as an empty one, and nothing is stored for it."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from servers import running_app

    config = ["fresh samples", "default", str(tiny_model_dir), "(same as A)", 0.7, 1.0, 0.95, 6, None]
    with running_app(tmp_path / "ws", tiny_model_dir) as (_, url):
        client = Client(url, verbose=False)
        client.predict("api-user", *config, api_name="/label_first_pair")
        client.predict("api-user", None, *config, api_name="/label_left")
        client.predict("api-user", *config, api_name="/label_next")
        with pytest.raises(AppError, match="enter your annotator name first"):
            client.predict(None, "why", *config, api_name="/label_right")
    labels = Store(tmp_path / "ws" / "store.sqlite").labels()
    assert [(label.annotator, label.rationale) for label in labels] == [("api-user", "")]
