"""Every remote call is bounded: a feed whose two models answer alike gives up after a fixed number of requests
with one clear message, a feed nobody asks pauses, each user has a request budget per endpoint, and a cancelled
bulk judging job stops sending. Real SDK clients against tests/fake_llm_server.py."""

import json
import threading
import time

import pytest
from fake_llm_server import FakeLLMServer, same_answer

from alignstudio.core import access
from alignstudio.core.errors import UserError
from alignstudio.core.registry import ModelRegistry
from alignstudio.services import remote_budget
from alignstudio.services.judges import endpoints
from alignstudio.services.sampling import prefetch
from alignstudio.services.sampling.generators import GeneratorPool
from alignstudio.services.sampling.prefetch import FeedConfig, FeedManager
from alignstudio.services.sampling.prompt_sets import PromptSets
from alignstudio.services.sampling.settings import SamplingSettings

PROMPT = [{"role": "user", "content": "Name a primary colour."}]


@pytest.fixture(autouse=True)
def clean():
    remote_budget.BUDGET.reset()
    yield
    endpoints.configure({})
    access.reset()
    remote_budget.BUDGET.reset()


def configure(server: FakeLLMServer, tmp_path, **extra) -> None:
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps({"lab": {"base_url": server.openai_url, "models": ["sft-7b", "sft-7b-v2"], **extra}}))
    endpoints.configure(endpoints.load_endpoints(path))


def wait_for(condition, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        time.sleep(0.05)
    return condition()


def test_a_feed_on_two_models_that_answer_alike_stops_after_a_bounded_number_of_requests(workspace, store, tmp_path):
    with FakeLLMServer(api_key=None, responder=same_answer()) as server:
        configure(server, tmp_path)
        feeds = FeedManager(GeneratorPool(ModelRegistry(workspace, store)), PromptSets(workspace), depth=1)
        settings = SamplingSettings(max_new_tokens=16, max_attempts=3)
        try:
            feed = feeds.feed(FeedConfig("default", "lab:sft-7b", "lab:sft-7b-v2", settings))
            assert wait_for(lambda: feed.error is not None)
            # depth 1: one prompt per batch, 3 attempts of 2 requests, FAILED_BATCHES batches, then nothing more
            bound = prefetch.FAILED_BATCHES * 1 * settings.max_attempts * 2
            assert len(server.requests) == bound == 12
            time.sleep(1.5)
            assert len(server.requests) == bound
            with pytest.raises(UserError) as error:
                feed.get(timeout=5)
            assert str(error.value) == (
                "the two models gave near-identical answers 6 times (similarity up to 1.00, "
                "above the threshold 0.9) in 6 attempts; sampling stopped. Try other "
                "temperatures or models."
            )
        finally:
            feeds.stop()


def test_a_feed_nobody_asks_pauses_and_resumes_on_the_next_get(workspace, store, tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch, "IDLE_S", 0.3)
    with FakeLLMServer(api_key=None, responder=same_answer(), delay=0.5) as server:
        configure(server, tmp_path)
        feeds = FeedManager(GeneratorPool(ModelRegistry(workspace, store)), PromptSets(workspace), depth=12)
        settings = SamplingSettings(max_new_tokens=16, similarity_threshold=1.0)  # every pair is kept
        try:
            feed = feeds.feed(FeedConfig("default", "lab:sft-7b", "lab:sft-7b-v2", settings))
            assert wait_for(lambda: feed.ready() == prefetch.BATCH)  # one batch of 4 pairs (8 requests)
            time.sleep(2.0)  # nobody asked for 0.3 s: no second batch, though 12 are wanted
            assert feed.ready() == prefetch.BATCH and len(server.requests) == 2 * prefetch.BATCH
            assert feed.get(timeout=5) is not None  # someone asks again: it samples again
            assert wait_for(lambda: len(server.requests) >= 4 * prefetch.BATCH)
        finally:
            feeds.stop()


def test_each_user_has_a_request_budget_per_endpoint_and_minute(workspace, store, tmp_path):
    from alignstudio.services.judges import JudgeInput, make_judge

    access.configure(role_of=lambda name: access.ADMIN if name == "boss" else access.ANNOTATOR)
    with FakeLLMServer(api_key=None, responder=same_answer()) as server:
        configure(server, tmp_path, requests_per_minute=3)
        gen = GeneratorPool(ModelRegistry(workspace, store)).get("lab:sft-7b")
        for user in ("ann1", "ann2"):
            with access.acting_as(access.caller_for(user)):
                with pytest.raises(UserError) as error:
                    gen.complete([PROMPT] * 5, [0.7] * 5, top_p=1.0, max_new_tokens=8, seed=None)
            assert str(error.value) == (
                f"the request budget for endpoint 'lab' is spent: 3 requests per minute per "
                f"user ({user}); try again in 60 s"
            )
        assert len(server.requests) == 6  # each caller's own 3, not one more
        with access.acting_as(access.caller_for("ann1")), pytest.raises(UserError, match="for admins"):
            remote_budget.remaining()
        with access.acting_as(access.caller_for("boss")):
            rows = remote_budget.remaining()
            assert rows == [
                {"endpoint": "lab", "user": "ann1", "limit": 3, "left": 0},
                {"endpoint": "lab", "user": "ann2", "limit": 3, "left": 0},
            ]
            # a judge on the same endpoint (found by its URL) pays from the same budget: boss's own
            judge = make_judge("openai", "judge-model", server.openai_url)
            item = JudgeInput(PROMPT, "Red.", "Blue.")
            for _ in range(3):
                judge.judge(item)
            with pytest.raises(UserError, match="budget for endpoint 'lab' is spent: 3 requests per minute"):
                judge.judge(item)
            assert remote_budget.remaining()[2] == {"endpoint": "lab", "user": "boss", "limit": 3, "left": 0}
        assert len(server.requests) == 9


def test_a_budget_spent_inside_a_feed_is_the_error_its_caller_sees(workspace, store, tmp_path):
    access.configure(role_of=lambda name: access.ANNOTATOR)
    with FakeLLMServer(api_key=None, responder=same_answer()) as server:
        configure(server, tmp_path, requests_per_minute=4)
        feeds = FeedManager(GeneratorPool(ModelRegistry(workspace, store)), PromptSets(workspace), depth=1)
        try:
            with access.acting_as(access.caller_for("ann1")):
                feed = feeds.feed(FeedConfig("default", "lab:sft-7b", "lab:sft-7b-v2", SamplingSettings()))
                with pytest.raises(
                    UserError,
                    match=r"budget for endpoint 'lab' is spent: 4 requests per minute per "
                    r"user \(ann1\)",
                ):
                    feed.get(timeout=30)
        finally:
            feeds.stop()
        assert len(server.requests) == 4


def test_the_endpoint_file_takes_a_budget_and_checks_it():
    from alignstudio.services.judges.endpoints import parse_endpoints

    parsed = parse_endpoints('{"x": {"base_url": "http://h/v1", "requests_per_minute": 5}}', "e.json")
    assert parsed["x"].requests_per_minute == 5
    assert parse_endpoints('{"x": {"base_url": "http://h/v1"}}', "e.json")["x"].requests_per_minute is None
    for bad in ("0", '"ten"', "1.5", "true", "1000000"):
        with pytest.raises(UserError, match="requests_per_minute must be a whole number from 1 to 100,000"):
            parse_endpoints(f'{{"x": {{"base_url": "http://h/v1", "requests_per_minute": {bad}}}}}', "e.json")


def test_a_cancelled_bulk_judging_job_stops_sending(workspace, store, tmp_path):
    from alignstudio.services.judges import make_judge
    from alignstudio.services.judges.bulk import judge_store

    for i in range(40):
        store.add_pair(
            PROMPT, f"Red, number {i}.", f"Blue is a primary colour too, number {i}.", model_a="m", model_b="m"
        )
    with FakeLLMServer(api_key=None, delay=0.1) as server:
        configure(server, tmp_path, requests_per_minute=1000)
        judge = make_judge("openai", "judge-model", server.openai_url)
        cancel, outcome = threading.Event(), {}

        def job():
            try:
                outcome["result"] = judge_store(store, judge, scope="all", concurrency=2, force=True, cancel=cancel)
            except UserError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=job)
        thread.start()
        assert wait_for(lambda: len(server.requests) >= 6)
        cancel.set()
        thread.join(timeout=30)
        sent = len(server.requests)
        time.sleep(1.0)
        assert len(server.requests) == sent < 40 * 2  # nothing more after the requests in flight finished
        assert isinstance(outcome.get("error"), remote_budget.Cancelled), outcome


def test_an_admin_may_label_pairs_of_a_remote_model_nobody_listed(workspace, store, tmp_path):
    access.configure(role_of=lambda name: access.ADMIN if name == "boss" else access.ANNOTATOR)
    with FakeLLMServer(api_key=None) as server:
        configure(server, tmp_path)
        feeds = FeedManager(GeneratorPool(ModelRegistry(workspace, store)), PromptSets(workspace), depth=1)
        config = FeedConfig("default", "lab:unlisted", "lab:sft-7b", SamplingSettings(similarity_threshold=1.0))
        try:
            with access.acting_as(access.caller_for("ann")), pytest.raises(UserError, match="for admins"):
                feeds.feed(config)
            with access.acting_as(access.caller_for("boss")):  # checked here; the feed's thread acts for the server
                assert feeds.feed(config).get(timeout=30).model_a == "lab:unlisted"
        finally:
            feeds.stop()


def test_a_cancelled_evaluation_stops_asking_the_remote_models(workspace, store, tmp_path):
    from alignstudio.services.evaluation import EvalSettings
    from alignstudio.services.evaluation.service import EvaluationService
    from alignstudio.services.judges.config import JudgeConfig

    with FakeLLMServer(api_key=None, delay=0.2) as server:
        configure(server, tmp_path)
        service = EvaluationService(
            store, workspace, GeneratorPool(ModelRegistry(workspace, store)), PromptSets(workspace), "smollm2"
        )
        outcome = {}

        def job():
            try:
                service.evaluate(
                    "lab:sft-7b",
                    "lab:sft-7b-v2",
                    "eval",
                    EvalSettings(batch_size=2, perplexity=False),
                    JudgeConfig(kind="rules", force=True),
                )
            except UserError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=job)
        thread.start()
        assert wait_for(lambda: len(server.requests) >= 4)
        service.cancel()
        thread.join(timeout=30)
        sent = len(server.requests)
        time.sleep(1.0)
        assert len(server.requests) == sent and isinstance(outcome.get("error"), remote_budget.Cancelled)
        assert sent < 2 * len(PromptSets(workspace).load("eval"))  # it stopped part-way
