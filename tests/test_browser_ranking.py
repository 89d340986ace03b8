"""A real browser at phone width (390 px) ranks four answers by keys: stored once as one ranking of six pairs,
and nothing in the ranking view overlaps or runs off the screen."""

import pytest
from playwright.sync_api import sync_playwright
from servers import BROWSER_ARGS, running_app

from alignstudio.core.store import Store

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 390, 844

# every visible box of the ranking view (answers, buttons, hint, status): two that intersect overlap
OVERLAPS = """
() => {
  const panel = document.querySelector('#rank-panel');
  const boxes = Array.from(panel.querySelectorAll('#rank-order-list > li, button, #rank-hint, #rank-prompt'))
    .filter((el) => el.offsetParent !== null)
    .map((el) => [el.id || el.tagName + (el.dataset.idx || ''), el.getBoundingClientRect()]);
  const found = [];
  for (let i = 0; i < boxes.length; i++) {
    const [name, r] = boxes[i];
    if (r.left < 0 || r.right > window.innerWidth + 0.5) found.push(name + ' off screen');
    for (let j = i + 1; j < boxes.length; j++) {
      const s = boxes[j][1];
      if (r.left < s.right - 0.5 && s.left < r.right - 0.5 && r.top < s.bottom - 0.5 && s.top < r.bottom - 0.5)
        found.push(name + ' / ' + boxes[j][0]);
    }
  }
  return {found, count: boxes.length, scroll: document.documentElement.scrollWidth};
}
"""


def _order(page) -> list[int]:
    return page.eval_on_selector_all("#rank-order-list li", "els => els.map(e => +e.dataset.idx)")


def test_ranking_four_answers_by_keys_at_phone_width(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    with running_app(workspace, tiny_model_dir) as (_, url), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
            page.goto(url)
            page.wait_for_function(
                "(document.querySelector('#label-prompt')?.innerText || '').includes('Prompt')", timeout=300_000
            )
            page.fill("#annotator textarea, #annotator input", "rita")
            page.click("text=Sampling settings")  # short answers: four of them are sampled per prompt
            page.fill("#label-max-new-tokens input", "24")
            page.keyboard.press("Tab")
            page.click("#label-answers label:has-text('4')")  # this prompt set ranks four answers from now on
            page.wait_for_selector("#rank-order-list li[data-idx='3']", timeout=300_000)
            assert not page.is_visible("#label-left-better")  # the pairwise view is gone
            key = page.get_attribute("#rank-order-list", "data-key")
            texts = page.eval_on_selector_all("#rank-order-list .rank-text", "els => els.map(e => e.innerText)")

            page.evaluate("document.activeElement && document.activeElement.blur()")
            for press in ("3", "2", "Backspace", "1", "4"):  # 3 best, then 1, then 4: 2 is last
                page.keyboard.press(press)
            assert _order(page) == [2, 0, 3, 1]
            assert "Enter submits" in page.inner_text("#rank-hint")
            layout = page.evaluate(OVERLAPS)
            assert layout["count"] >= 7 and layout["found"] == [] and layout["scroll"] <= WIDTH, layout

            page.keyboard.press("Enter")
            page.wait_for_function(
                "(document.querySelector('#rank-status')?.innerText || '').includes('6 pair labels by rita')",
                timeout=300_000,
            )
            page.wait_for_function(
                f"document.querySelector('#rank-order-list')?.dataset.key !== {key!r}", timeout=300_000
            )
            assert _order(page) == [0, 1, 2, 3]  # the next answers, with no picks yet
        finally:
            browser.close()
    store = Store(workspace / "store.sqlite")
    [ranking] = store.rankings()
    assert ranking.id == key and ranking.annotator == "rita"
    words = lambda text: " ".join(text.split())  # noqa: E731 - the page shows runs of spaces as no-break spaces
    assert [words(store.generation_text(g)) for g in ranking.gen_ids] == [words(texts[i]) for i in (2, 0, 3, 1)]
    rows = store.preference_rows()
    assert len(rows) == 6 and {r["group_id"] for r in rows} == {key}
