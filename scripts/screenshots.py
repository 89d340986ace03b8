"""Screenshots of the Label, Train and Arena tabs for the README, taken in Chromium from the app running on the
embedded SmolLM2 over a workspace with trained runs (e.g. the effect benchmark's cache).

    .venv/bin/python scripts/screenshots.py --workspace bench/results/.cache/ws --out docs/img
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from servers import browser_page, running_app  # noqa: E402


def _wait_text(page, elem_id: str, needle: str, timeout: int = 600_000) -> None:
    page.wait_for_function(
        f"(document.querySelector('#{elem_id}')?.innerText || '').includes({needle!r})", timeout=timeout
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--arena-model", default=None, help="model beside smollm2 in the arena (default: newest)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with running_app(args.workspace, "smollm2") as (_, url), browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(url)
        page.fill("#annotator textarea, #annotator input", "ana")
        _wait_text(page, "label-prompt", "Prompt")
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press("1")
        _wait_text(page, "label-status", "Last:")
        page.screenshot(path=str(args.out / "label-tab.png"), full_page=True)

        page.get_by_role("tab", name="Train").click()
        page.wait_for_function(
            "(document.querySelector('#train-status')?.innerText || '').includes('SUCCEEDED')", timeout=120_000
        )
        page.wait_for_timeout(3000)  # the plots draw
        page.screenshot(path=str(args.out / "train-tab.png"), full_page=True)

        page.get_by_role("tab", name="Arena").click()
        if args.arena_model:
            page.locator("#arena-model-x input").fill(args.arena_model)
            page.locator("#arena-model-x input").press("Enter")
        page.click("#arena-new")
        page.fill("#arena-message textarea", "Give me two tips for sleeping better.")
        page.click("#arena-send")
        _wait_text(page, "arena-reveal", "Vote when")
        page.click("#arena-vote-left")
        _wait_text(page, "arena-reveal", "Vote stored")
        page.screenshot(path=str(args.out / "arena-tab.png"), full_page=True)
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
