"""In Chromium (issue 37): an admin starts live mode in the Label tab, labels through two bursts (K = 2) while the
chip follows the policy, and every label is stored once and reaches the live session once."""

from __future__ import annotations

import json

import pytest
from servers import browser_page, running_app

from alignstudio.core.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LABELS = 6  # the first pair is the base model's (on screen before live mode starts); then two bursts of K = 2 and more


def _text(page, elem_id: str) -> str:
    return page.evaluate(f"document.querySelector('#{elem_id}')?.innerText || ''")


def _wait_text(page, elem_id: str, needle: str, timeout_ms: int = 600_000) -> None:
    page.wait_for_function(
        f"(document.querySelector('#{elem_id}')?.innerText || '').includes({needle!r})", timeout=timeout_ms
    )


def _wait_next(page, needle: str) -> None:
    """The label stored and the tab moved on (the next pair, or the wait for one): not only acknowledged."""
    status = "document.querySelector('#label-status')?.innerText || ''"
    page.wait_for_function(f"(t => t.includes({needle!r}) && !t.includes('tored'))({status})", timeout=600_000)


@pytest.mark.timeout(2400)  # two bursts with the drift check took ~210 s each on a loaded 2-core machine
def test_labeling_through_two_live_bursts_with_the_chip_following(tmp_path, tiny_model_dir):
    workspace = tmp_path / "ws"
    chips = []
    with running_app(workspace, tiny_model_dir) as (_, url), browser_page() as page:
        page.goto(url)
        _wait_text(page, "label-prompt", "Prompt")  # a shared, busy machine: minutes
        page.fill("#annotator textarea, #annotator input", "alice")
        assert "Live mode is off" in _text(page, "label-live-chip")

        page.click("text=Live mode: the model learns while you label")
        page.fill("#label-live-every input", "2")
        page.click("#label-live-start")
        _wait_text(page, "label-live-message", "Started live session")
        _wait_text(page, "label-live-chip", "Live v0")  # the trainer loaded the model and saved v0
        chips.append(_text(page, "label-live-chip"))

        for n in range(1, LABELS + 1):
            page.wait_for_selector("#label-left-better:not([disabled])", timeout=600_000)  # a pair to label
            page.click("#label-left-better" if n % 2 else "#label-right-better")
            _wait_next(page, f"{n} labels by alice")
            chip = _text(page, "label-live-chip")
            if chip != chips[-1]:
                chips.append(chip)
        _wait_text(page, "label-live-chip", "2 bursts")  # the chip's timer brings each burst in
        chips.append(_text(page, "label-live-chip"))

    store = Store(workspace / "store.sqlite")
    events = [e for e in store.iter_events() if e["kind"] == "preference"]
    assert len(events) == LABELS and len({e["id"] for e in events}) == LABELS  # none lost, none twice
    assert len({e["pair_id"] for e in events}) == LABELS  # each pair labeled once
    live_pairs = {e["pair_id"]: e for e in events if store.pair(e["pair_id"]).model_a.startswith("live-")}
    assert len(live_pairs) >= 4, "pairs after the start come from the live policy"
    [session] = [p for p in (workspace / "live").iterdir() if (p / "session.json").exists()]
    rows = [json.loads(line) for line in (session / "labels.jsonl").read_text().splitlines()]
    assert sorted(r["pair_id"] for r in rows) == sorted(live_pairs)  # each live label reached it once
    assert all(r["annotator"] == "alice" for r in rows)
    bursts = [json.loads(line) for line in (session / "bursts.jsonl").read_text().splitlines()]
    assert len(bursts) >= 2 and all(b["outcome"] in ("kept", "discarded") for b in bursts), bursts
    kept = [b["version"] for b in bursts if b["outcome"] == "kept"]
    final = chips[-1]
    assert f"Live v{kept[-1] if kept else 0}" in final and f"{len(kept)} kept" in final, (chips, bursts)
    assert "last burst finished" in final and "no burst yet" in chips[0]
