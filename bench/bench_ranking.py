"""Benchmark: pairs stored per minute by a scripted browser labeler, pairwise vs four-answer rankings.

The real app (a subprocess) and headless Chromium. Pairwise: the labeler reads the pair (`--read` seconds per
answer), presses 1 and waits for the next pair. Ranking (the prompt set set to 4 answers per prompt): reads the
four answers, presses 1 2 3 and Enter (6 pairs per ranking), and waits for the next four. Each mode runs for
`--seconds` after its first item is on screen; the pairs counted are those the store holds at the end.
The model is the tests' tiny random model (`--model` for another) with short answers (`--max-new-tokens`),
so the figure is the labeling loop's, not a large model's sampling speed.

    python bench/bench_ranking.py [--seconds 90] [--read 1.0] [--max-new-tokens 24]

Prints the figures and writes bench/results/ranking.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from servers import BROWSER_ARGS  # noqa: E402  (the tests' Chromium flags)

from bench.common import describe, machine, start_app, stop_app, write_result  # noqa: E402

WAIT_MS = 600_000


def _pairs(workspace: Path) -> int:
    from alignstudio.core.store import Store

    store = Store(workspace / "store.sqlite")
    try:
        return len(store.preference_rows())
    finally:
        store.close()


def _settings(page, max_new_tokens: int) -> None:
    page.click("text=Sampling settings")
    page.fill("#label-max-new-tokens input", str(max_new_tokens))
    page.keyboard.press("Tab")
    page.evaluate("document.activeElement && document.activeElement.blur()")


def _pairwise(page, seconds: float, read: float) -> tuple[int, float]:
    """(labels given, seconds taken) from the first pair on screen: read both answers, press 1, wait for the next."""
    page.wait_for_selector("#label-left-better:not([disabled])", timeout=WAIT_MS)
    given, start = 0, time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        shown = page.inner_text("#label-left")
        page.wait_for_timeout(max(350, int(2 * read * 1000)))  # 2 answers read; a key within 300 ms is a double
        page.keyboard.press("1")
        given += 1
        page.wait_for_function(
            f"document.querySelector('#label-left')?.innerText !== {shown!r} && "
            "!document.querySelector('#label-left-better')?.disabled",
            timeout=WAIT_MS,
        )
    return given, time.monotonic() - start


def _ranking(page, seconds: float, read: float) -> tuple[int, float]:
    """(rankings given, seconds taken) from the first four answers on screen: read them, press 1 2 3 and Enter,
    wait for the next four."""
    page.click("#label-answers label:has-text('4')")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.wait_for_selector("#rank-order-list li[data-idx='3']", timeout=WAIT_MS)
    given, start = 0, time.monotonic()
    end = start + seconds
    while time.monotonic() < end:
        key = page.get_attribute("#rank-order-list", "data-key")
        page.wait_for_timeout(int(4 * read * 1000))
        for press in ("1", "2", "3", "Enter"):
            page.keyboard.press(press)
        given += 1
        page.wait_for_function(
            f"document.querySelector('#rank-order-list')?.dataset.key !== {key!r}"
            " && document.querySelectorAll('#rank-order-list li').length === 4",
            timeout=WAIT_MS,
        )
    return given, time.monotonic() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="labeling time per mode")
    parser.add_argument("--read", type=float, default=1.0, help="seconds the labeler reads each answer")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--model", help="model folder (default: the tests' tiny random model)")
    parser.add_argument("--modes", default="pairwise,ranking-4", help="which to run, comma-separated")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-ranking-"))
    if args.model:
        model = Path(args.model)
    else:
        from tiny_model import build_tiny_model

        model = build_tiny_model(root / "tiny")
    results = {}
    for mode, run in (("pairwise", _pairwise), ("ranking-4", _ranking)):
        if mode not in args.modes.split(","):
            continue
        workspace = root / mode / "ws"
        workspace.parent.mkdir(parents=True)
        proc, url = start_app(workspace, model)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS, headless=True)
                page = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
                page.goto(url)
                page.wait_for_selector("#label-left-better:not([disabled])", timeout=WAIT_MS)
                page.fill("#annotator textarea, #annotator input", "bench")
                _settings(page, args.max_new_tokens)
                given, elapsed = run(page, args.seconds, args.read)
                browser.close()
        finally:
            stop_app(proc)
        pairs = _pairs(workspace)
        results[mode] = {
            "items": given,
            "pairs": pairs,
            "seconds": round(elapsed, 1),
            "pairs_per_minute": round(60 * pairs / elapsed, 2),
        }
        print(f"{mode}: {given} items, {pairs} pairs in {elapsed:.0f} s: {60 * pairs / elapsed:.1f} pairs/min")
    gain = None
    if len(results) == 2:
        gain = results["ranking-4"]["pairs_per_minute"] / max(results["pairwise"]["pairs_per_minute"], 1e-9)
        print(f"ranking-4 / pairwise: {gain:.2f}x pairs per minute (issue 34's target: at least 2.5x)")
    info = machine()
    payload = {"machine": info, "args": vars(args), "results": results, "ratio": gain and round(gain, 2)}
    print(describe(info))
    print(f"wrote {write_result('ranking', payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
