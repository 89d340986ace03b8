"""A real browser chats one turn in anonymous mode and votes; the vote is a stored preference pair, the model
names appear only after the vote, and the leaderboard follows the vote (with "too few votes" for one vote)."""

import re

import pytest
from servers import browser_page, running_app

from alignstudio.core.store import Store

pytestmark = pytest.mark.browser


def _body(page) -> str:
    return page.evaluate(
        "document.querySelector('#tab-arena')?.closest('.tabitem')?.innerText || document.body.innerText"
    )


def test_anonymous_chat_vote_reveals_names_and_stores_a_pair(tmp_path, tiny_model_dir, second_tiny_model_dir):
    workspace = tmp_path / "ws"
    name_x, name_y = str(second_tiny_model_dir.resolve()), str(tiny_model_dir.resolve())
    with running_app(workspace, tiny_model_dir, "--allow-path", name_x) as (_, url), browser_page() as page:
        page.goto(url)
        page.fill("#annotator textarea, #annotator input", "carol")
        page.get_by_role("tab", name="Arena").click()
        page.locator("#arena-model-x input").fill(name_x)
        page.locator("#arena-model-x input").press("Enter")
        page.click("#arena-new")
        page.wait_for_function(
            "(document.querySelector('#arena-reveal')?.innerText || '').includes('New')", timeout=30_000
        )
        page.fill("#arena-message textarea", "Tell me one fact about owls.")
        page.click("#arena-send")
        page.wait_for_function(
            "(document.querySelector('#arena-reveal')?.innerText || '').includes('Vote when')", timeout=120_000
        )
        text = page.evaluate("document.body.innerText")
        assert "owls" in text
        assert "tiny-llama-b" not in text and name_y not in text  # anonymous until the vote
        page.click("#arena-vote-left")
        page.wait_for_function(
            "(document.querySelector('#arena-reveal')?.innerText || '').includes('Vote stored')", timeout=30_000
        )
        reveal = page.inner_text("#arena-reveal")
        assert "tiny-llama-b" in reveal and "tiny-llama" in reveal.replace("tiny-llama-b", "")
        # the leaderboard follows the vote without a refresh, and one vote gives no interval
        page.wait_for_function(
            "(document.querySelector('#arena-leaderboard')?.innerText || '').includes('too few votes')",
            timeout=120_000,
        )
        board = page.inner_text("#arena-leaderboard")
        assert "tiny-llama-b" in board and "style-controlled" in board
        assert not re.search(r"\[\d+\.\d, \d+\.\d\]", board)  # no interval such as [1455.5, 1455.5]
        assert "bootstrap rounds" in page.inner_text("#arena-style-summary")

    store = Store(workspace / "store.sqlite")
    [row] = store.preference_rows()
    assert row["source"] == "arena" and row["annotator"] == "carol" and row["verdict"] == "A"
    assert row["messages"] == [{"role": "user", "content": "Tell me one fact about owls."}]
    assert {row["model_a"], row["model_b"]} == {name_x, name_y}
    assert row["text_a"] and row["text_b"]
