"""In Chromium: an annotator picks two listed remote models that always answer alike on the Label tab. The page
shows one clear message (a toast) instead of hanging, and the fake server got a bounded number of requests."""

import json
import re
import time

import pytest
from fake_llm_server import FakeLLMServer, same_answer
from servers import browser_page, running_app

from alignstudio.services.sampling.prefetch import BATCH, FAILED_BATCHES
from alignstudio.services.sampling.settings import SamplingSettings

pytestmark = pytest.mark.browser
MESSAGE = re.compile(r"the two models gave near-identical answers (\d+) times")


def _pick(page, elem_id: str, option: str) -> None:
    page.click(f"#{elem_id} input")
    page.locator(f"#{elem_id} ul li", has_text=option).first.click()


def test_the_browser_shows_why_two_alike_models_give_no_pair_and_the_server_gets_a_bounded_number(
    tmp_path, tiny_model_dir
):
    with FakeLLMServer(api_key=None, responder=same_answer()) as server:
        endpoints = tmp_path / "endpoints.json"
        endpoints.write_text(json.dumps({"lab": {"base_url": server.openai_url, "models": ["sft-7b", "sft-7b-v2"]}}))
        with (
            running_app(tmp_path / "ws", tiny_model_dir, "--endpoints", str(endpoints)) as (_, url),
            browser_page() as page,
        ):
            page.goto(url)
            page.wait_for_function(
                "(document.querySelector('#label-prompt')?.innerText || '').includes('Prompt')", timeout=60_000
            )  # the local model's first pair
            page.locator(".label-wrap:visible", has_text="Sampling settings").first.click()
            _pick(page, "label-model-b", "lab:sft-7b-v2")  # local against remote: the answers differ
            page.wait_for_function(
                "(document.querySelector('#label-right')?.innerText || '')"
                ".includes('The answer is 42.') || (document.querySelector('#label-left')?."
                "innerText || '').includes('The answer is 42.')",
                timeout=60_000,
            )
            time.sleep(2)  # that feed fills its few pairs ahead, then rests
            before = len(server.requests)
            _pick(page, "label-model-a", "lab:sft-7b")  # now both remote, always the same answer
            toast = page.locator(".toast-wrap", has_text="near-identical answers")
            toast.first.wait_for(timeout=60_000)
            text = toast.first.inner_text()
            assert "Try other temperatures or models." in text
            attempts = int(MESSAGE.search(text).group(1))
            # side A's model is asked once per attempt (side B's too; the earlier feed may still ask sft-7b-v2)
            side_a = sum(r.body.get("model") == "sft-7b" for r in server.requests[before:])
            assert side_a == attempts <= FAILED_BATCHES * BATCH * SamplingSettings().max_attempts
            time.sleep(3)
            assert sum(r.body.get("model") == "sft-7b" for r in server.requests) == side_a  # nothing after it
