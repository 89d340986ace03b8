"""The reported runaway, end to end: the app started with `--auth` and `--endpoints`, an annotator asks the Label
tab (over its HTTP API, as the browser does) for pairs from two listed models that always answer alike. The
call comes back with one clear message after a bounded number of requests, nothing is sent after it, and each
user's request budget per minute caps what repeated calls can cost."""

import json
import re
import time

import pytest
from fake_llm_server import FakeLLMServer, same_answer

from alignstudio.services.remote_budget import DEFAULT_RPM
from alignstudio.services.sampling.prefetch import BATCH, FAILED_BATCHES
from alignstudio.services.sampling.settings import SamplingSettings

ATTEMPTS = SamplingSettings().max_attempts
NEAR_IDENTICAL = re.compile(
    r"the two models gave near-identical answers (\d+) times \(similarity up to 1\.00, "
    r"above the threshold 0\.9\) in \1 attempts; sampling stopped\. Try other temperatures "
    r"or models\."
)


def test_an_annotator_asking_for_pairs_of_two_models_that_answer_alike_gets_one_message_and_a_bounded_bill(
    tmp_path, tiny_model_dir
):
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from servers import running_app

    from alignstudio.services.auth import hash_password

    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hash_password('alice-password')}:admin\nbob:{hash_password('bob-password')}:annotator\n")
    config = ["fresh samples", "default", "lab:sft-7b", "lab:sft-7b-v2", 0.7, 1.0, 0.95, 16, None]
    with FakeLLMServer(api_key=None, responder=same_answer()) as server:
        endpoints = tmp_path / "endpoints.json"
        endpoints.write_text(json.dumps({"lab": {"base_url": server.openai_url, "models": ["sft-7b", "sft-7b-v2"]}}))
        with running_app(tmp_path / "ws", tiny_model_dir, "--auth", str(users), "--endpoints", str(endpoints)) as (
            _,
            url,
        ):
            bob = Client(url, auth=("bob", "bob-password"), verbose=False)
            started = time.time()
            with pytest.raises(AppError) as error:
                bob.predict("", *config, api_name="/label_first_pair")
            assert time.time() - started < 60  # an answer, not a call that hangs
            attempts = int(NEAR_IDENTICAL.fullmatch(str(error.value)).group(1))
            sent = len(server.requests)
            # every attempt is two requests (one per model), at most FAILED_BATCHES batches of BATCH prompts
            assert sent == 2 * attempts <= FAILED_BATCHES * BATCH * ATTEMPTS * 2
            time.sleep(3)
            assert len(server.requests) == sent  # nothing goes on after the answer
            # asking again and again: bob's budget per minute ends it, and the server saw exactly that many
            with pytest.raises(AppError) as error:
                for _ in range(3):
                    bob.predict("", *config, api_name="/label_first_pair")
            assert re.fullmatch(
                rf"the request budget for endpoint 'lab' is spent: {DEFAULT_RPM} requests per minute "
                r"per user \(bob\); try again in \d+ s",
                str(error.value),
            )
            assert len(server.requests) == DEFAULT_RPM
            alice = Client(url, auth=("alice", "alice-password"), verbose=False)  # her own budget
            with pytest.raises(AppError, match=NEAR_IDENTICAL.pattern):
                alice.predict("", *config, api_name="/label_first_pair")
            assert DEFAULT_RPM < len(server.requests) <= DEFAULT_RPM + FAILED_BATCHES * BATCH * ATTEMPTS * 2


def test_an_admin_cancels_bulk_judging_over_http_and_the_judge_server_stops_getting_requests(tmp_path, tiny_model_dir):
    from gradio_client import Client
    from gradio_client.exceptions import AppError
    from servers import running_app

    from alignstudio.core.store import Store
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.auth import hash_password

    users = tmp_path / "users.txt"
    users.write_text(f"alice:{hash_password('alice-password')}:admin\nbob:{hash_password('bob-password')}:annotator\n")
    ws = Workspace.open(tmp_path / "ws")
    store = Store(ws.db_path)
    for i in range(40):
        store.add_pair(
            [{"role": "user", "content": f"Question {i}?"}],
            f"Short {i}.",
            f"A longer answer to question {i}.",
            model_a="m",
            model_b="m",
        )
    store.close()
    with FakeLLMServer(api_key=None, delay=0.2) as server:
        endpoints = tmp_path / "endpoints.json"
        endpoints.write_text(json.dumps({"lab": {"base_url": server.openai_url}}))
        with running_app(ws.root, tiny_model_dir, "--auth", str(users), "--endpoints", str(endpoints)) as (_, url):
            alice = Client(url, auth=("alice", "alice-password"), verbose=False)
            bob = Client(url, auth=("bob", "bob-password"), verbose=False)
            judge = ["openai", "judge-model", "lab", "", "helpfulness", True]
            job = alice.submit("all", False, 0.4, "", 2, *judge, api_name="/judge_store_pairs")
            deadline = time.time() + 60
            while len(server.requests) < 6 and time.time() < deadline:
                time.sleep(0.05)
            with pytest.raises(AppError, match="for admins"):
                bob.predict(api_name="/evaluation_cancel")
            assert alice.predict(api_name="/evaluation_cancel").startswith("Cancelling")
            job.result(timeout=60)
            sent = len(server.requests)
            time.sleep(2)
            assert len(server.requests) == sent < 40 * 2  # it stopped sending, well before the end
            with pytest.raises(AppError, match="request budgets is for admins"):
                bob.predict(api_name="/request_budgets")
            table = alice.predict(api_name="/request_budgets")
            rows = {tuple(row[:3]): row[3] for row in table["data"]}
            assert rows[("lab", "alice", 60)] == 60 - sent
