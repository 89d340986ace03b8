"""Every event handler the app registers (in the API or not), called over HTTP as a stranger and as an annotator.

A stranger is refused on every one. An annotator is refused on each handler the table marks ADMIN, and no answer
to them holds another annotator's labels or any admin data: those are seeded with marker words (another
annotator's label, a run, a rounds folder, an evaluation report, and the workspace's own path, which every server
path contains). A handler missing from the table, or a table entry that is no handler any more, fails the test, so
a handler added tomorrow has to be placed in it.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from servers import running_app

from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.services.auth import hash_password

pytestmark = pytest.mark.slow

OTHER = "zebracarol"  # in another annotator's pair, answer and reason
ADMIN_DATA = "falconx"  # in the workspace's path, a run's name, a rounds folder and a report's name
ADMIN, OWN = "admin only", "own data"

# "trigger.event -> first output": what the handler answers an annotator. ADMIN: refused (as an error, or the
# warning a long job's progress handler shows); OWN: answered, with none of the seeded data.
EXPECTED = {
    # the page itself: who is signed in, which tabs show
    "?.load -> annotator": OWN,
    "annotator.change -> browserstate": OWN,
    "?.load -> Validate": OWN,
    # Label: pairs from the shared prompt sets, the annotator's own labels
    "page.then -> state": OWN,  # the first pair (after the name), the next pair after a label or skip
    "page.success -> label-prompt": OWN,  # the placeholder while no pair is ready (both tabs' `hold`)
    "page.then -> label-left-better": OWN,  # the buttons on or off, the timer while waiting (`settle`)
    "page.failure -> label-prompt": OWN,  # the pair back after a failed skip (`restore`)
    "timer.tick -> state": OWN,  # a waiting tab asks again (both tabs' `poll`)
    "label-left-better.click -> label-status": OWN,
    "label-right-better.click -> label-status": OWN,
    "label-tie.click -> label-status": OWN,
    "label-both-bad.click -> label-status": OWN,
    "label-left-much.click -> label-status": OWN,  # graded verdicts: much / slightly better per side
    "label-left-slight.click -> label-status": OWN,
    "label-right-much.click -> label-status": OWN,
    "label-right-slight.click -> label-status": OWN,
    "label-skip.click -> label-prompt": OWN,
    "label-undo.click -> state": OWN,
    "label-sample-typed.click -> state": OWN,
    "label-edit-side.change -> label-edit-text": OWN,
    "label-edit-save.click -> label-status": OWN,
    "label-source.change -> row": OWN,
    "label-fill-queue.click -> label-status": ADMIN,
    # Label, ranking 3 or 4 answers (ui/ranking.py): the prompt set's setting is the admins' to change
    "page.then -> label-answers": OWN,  # which view shows, and the first answers to rank
    "label-prompt-set.input -> label-answers": OWN,
    "label-answers.input -> label-answers": ADMIN,
    "rank-submit.click -> rank-status": OWN,
    "page.success -> state": OWN,  # the next answers after a ranking
    "rank-skip.click -> state": OWN,
    "rank-undo.click -> state": OWN,
    "label-source.input -> state": OWN,
    "label-prompt-set.input -> state": OWN,
    "label-model-a.input -> state": OWN,
    "label-model-b.input -> state": OWN,
    "?.load -> label-prompt-set": OWN,
    "Label.select -> label-prompt-set": OWN,
    "Sampling settings.expand -> label-prompt-set": OWN,
    "state.change -> label-guidelines": OWN,  # the labeling guidelines of the pair on screen
    "?.load -> Edit the guidelines (admins)": OWN,  # the editor shown to admins only
    "Edit the guidelines (admins).expand -> label-guidelines-campaign": OWN,  # the guidelines everyone reads
    "label-guidelines-save.click -> label-guidelines-status": ADMIN,
    # Label: live mode (issue 37): admins start and stop it; the chip is everyone's
    "label-live-start.click -> label-live-message": ADMIN,
    "label-live-stop.click -> label-live-message": ADMIN,
    "timer.tick -> label-live-chip": OWN,
    # Feedback
    "Feedback.select -> state": OWN,
    "feedback-up.click -> feedback-status": OWN,
    "feedback-down.click -> feedback-status": OWN,
    "feedback-skip.click -> feedback-prompt": OWN,
    "page.success -> feedback-prompt": OWN,
    "page.then -> feedback-up": OWN,
    "page.failure -> feedback-prompt": OWN,
    "feedback-undo.click -> state": OWN,
    "feedback-prompt-set.input -> state": OWN,
    "feedback-model-a.input -> state": OWN,
    "Feedback.select -> feedback-prompt-set": OWN,
    "Sampling settings.expand -> feedback-prompt-set": OWN,
    "state.change -> feedback-guidelines": OWN,
    # Data: the annotator's own labels; import and export are the admins'
    "Data.select -> data-table": OWN,
    "?.load -> data-table": OWN,
    "data-refresh.click -> data-table": OWN,
    "data-kind.change -> data-table": OWN,
    "data-source.submit -> data-table": OWN,
    "data-annotator.submit -> data-table": OWN,
    "data-verdict.change -> data-table": OWN,
    "data-prompt-set.submit -> data-table": OWN,
    "data-search.submit -> data-table": OWN,
    "data-origin.change -> data-table": OWN,
    "data-stored.change -> data-table": OWN,
    "data-table.select -> data-event-id": OWN,
    "data-relabel.click -> data-table": OWN,
    "data-retract.click -> data-table": OWN,
    "data-export.click -> data-export-files": ADMIN,
    "data-quality-refresh.click -> data-quality": OWN,  # their own count and agreement only
    "data-import.click -> data-message": OWN,  # refused too, but "choose a file" comes first (no file touched)
    "campaign-name.change -> campaign-overlap": OWN,  # a campaign's settings and progress: counts, no labels
    "campaign-save.click -> campaign-message": ADMIN,  # annotators per pair: the admins' setting
    "campaign-refresh.click -> campaign-name": OWN,
    # Validate, Train, Evaluate, Rounds: the loop is the admins'; their page-load lists answer annotators empty
    "Validate.select -> validate-source": OWN,
    "?.load -> validate-source": OWN,
    "validate-run.click -> validate-summary": ADMIN,
    "train-compare-runs.change,train-compare-metric.change,train-compare-refresh.click -> column": OWN,
    "train-method.change -> train-loss-type": OWN,
    "train-data-kind.change -> train-snapshot": OWN,
    "train-start.click -> train-runs": ADMIN,
    "train-sweep.click -> train-runs": ADMIN,
    "train-show-command.click -> train-command": ADMIN,
    "train-cancel.click -> train-message": ADMIN,
    "train-resume.click -> train-message": ADMIN,
    "train-merge.click -> train-message": ADMIN,
    "train-eval.click -> train-eval-summary": ADMIN,
    "train-capabilities.click -> train-capabilities-result": ADMIN,
    "train-run.change -> train-status": OWN,
    "train-runs.select -> train-run": OWN,
    "timer.tick -> train-runs": OWN,
    "train-refresh.click -> train-runs": OWN,
    "?.load -> train-runs": OWN,
    "Train.select -> train-runs": OWN,
    "timer.tick -> train-live-session": OWN,  # live sessions' curves across bursts (as the Label tab's chip)
    "timer.tick -> train-live-loss": OWN,
    "train-live-session.change -> train-live-loss": OWN,
    "eval-run.click -> eval-summary": ADMIN,
    "eval-show-report.click -> eval-summary": ADMIN,
    "eval-bulk-run.click -> eval-bulk-status": ADMIN,
    "eval-cancel.click -> eval-bulk-status": ADMIN,
    "eval-budgets-refresh.click -> eval-budgets": ADMIN,
    "eval-agreement-refresh.click -> eval-agreement": OWN,
    "timer.tick -> eval-agreement": OWN,
    "?.load -> eval-model": OWN,
    "Evaluate.select -> eval-agreement": OWN,
    "rounds-start.click -> rounds-pick": ADMIN,
    "rounds-stop.click -> rounds-status": ADMIN,
    "rounds-pick.change -> rounds-status": OWN,
    "timer.tick -> rounds-status": OWN,
    "Rounds.select -> rounds-model": OWN,
    "?.load -> rounds-model": OWN,
    # Arena: votes are the annotator's; the leaderboard is everyone's, as on Chatbot Arena
    "arena-new.click -> state": OWN,
    "arena-send.click -> state": OWN,
    "arena-message.submit -> state": OWN,
    "arena-regenerate.click -> state": OWN,
    "arena-vote-left.click -> state": OWN,
    "arena-vote-right.click -> state": OWN,
    "arena-vote-tie.click -> state": OWN,
    "arena-vote-both-bad.click -> state": OWN,
    "Arena.select -> arena-leaderboard": OWN,
    "Arena.select -> arena-model-x": OWN,
    "arena-refresh.click -> arena-leaderboard": OWN,
    "page.success -> arena-leaderboard": OWN,  # the leaderboard refitted after each stored vote
}
# handlers whose answer to an admin holds the seeded data: proof that the seeds sit where the handlers read
SHOWN_TO_ADMINS = (
    "?.load -> train-runs",
    "?.load -> data-table",
    "Rounds.select -> rounds-model",
    "Evaluate.select -> eval-agreement",
)


def _seed(ws: Workspace) -> None:
    from alignstudio.services.rounds.folder import rounds_root, write_status
    from alignstudio.training.run_folder import CANCELLED, QUEUED, RunFolder
    from alignstudio.training.spec import RunSpec

    store = Store(ws.db_path)
    pair = store.add_pair(
        [{"role": "user", "content": f"Where does {OTHER} live?"}],
        f"{OTHER} lives here.",
        f"{OTHER} lives there.",
        model_a="m",
        model_b="m",
        prompt_set="default",
    )
    store.add_preference(pair, "A", annotator="carol", shown_left="A", rationale=f"{OTHER} said so")
    store.close()
    data = ws.root / f"{ADMIN_DATA}.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    run = RunFolder.create(ws.runs_dir / f"run-{ADMIN_DATA}", RunSpec(method="dpo", model="m", data=str(data)))
    run.transition(CANCELLED, expect=QUEUED, note=f"{ADMIN_DATA} cancelled")
    folder = rounds_root(ws) / f"rounds-{ADMIN_DATA}"
    folder.mkdir(parents=True)
    write_status(folder, [], "failed", f"{ADMIN_DATA} note")
    evals = ws.root / "evals"
    evals.mkdir(exist_ok=True)
    (evals / f"report-{ADMIN_DATA}.json").write_text("{}")


def _key(config: dict, dependency: dict) -> str:
    components = {c["id"]: c for c in config["components"]}

    def name(block_id) -> str:
        if block_id is None:
            return "page"
        props = components.get(block_id, {}).get("props", {})
        return props.get("elem_id") or props.get("label") or components.get(block_id, {}).get("type", "?")

    triggers = ",".join(f"{name(block)}.{event}" for block, event in dependency["targets"])
    outputs = dependency["outputs"]
    return f"{triggers} -> {name(outputs[0]) if outputs else 'nothing'}"


def _inputs(config: dict, dependency: dict, overrides: dict) -> list:
    components = {c["id"]: c for c in config["components"]}
    values = []
    for block_id in dependency["inputs"]:
        props = components.get(block_id, {}).get("props", {})
        values.append(overrides.get(props.get("elem_id"), props.get("value")))
    return values


def _call(client: httpx.Client, url: str, index: int, trigger, data: list, timeout_s: float = 90) -> tuple[str, str]:
    """('ok', the answer's JSON) or ('error', the message), or ('refused', the HTTP status)."""
    session = uuid.uuid4().hex
    joined = client.post(
        f"{url}gradio_api/queue/join",
        json={"data": data, "fn_index": index, "session_hash": session, "trigger_id": trigger, "event_data": None},
    )
    if joined.status_code != 200:
        return "refused", str(joined.status_code)
    deadline = time.time() + timeout_s
    answers = []
    with client.stream(
        "GET", f"{url}gradio_api/queue/data", params={"session_hash": session}, timeout=timeout_s
    ) as stream:
        for line in stream.iter_lines():
            if time.time() > deadline:
                return "error", "timed out"
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "log":  # a warning toast (with_progress answers refusals with one)
                answers.append(str(message.get("log")))
            if message.get("msg") == "process_generating":
                answers.append(json.dumps(message.get("output")))
            if message.get("msg") == "process_completed":
                output = message.get("output") or {}
                if not message.get("success"):
                    return "error", str(output.get("error") or output)
                return "ok", "\n".join(answers + [json.dumps(output)])
    return "error", "stream closed"


def _sign_in(url: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(timeout=30)
    answer = client.post(f"{url}login", data={"username": name, "password": password})
    assert answer.status_code == 200, answer.text
    return client


def _leaks(answer: str, sent: list) -> bool:
    for value in sent:  # an error may quote what was sent: that is no leak
        if isinstance(value, str) and value:
            answer = answer.replace(value, "")
    return OTHER in answer or ADMIN_DATA in answer


def test_every_handler_refuses_strangers_and_gives_annotators_only_their_own(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("handlers")
    ws = Workspace.open(root / f"ws-{ADMIN_DATA}")
    _seed(ws)
    users = root / "users.txt"
    users.write_text(
        f"alice:{hash_password('alice-password')}:admin\n"
        f"bob:{hash_password('bob-password')}:annotator\n"
        f"carol:{hash_password('carol-password')}:annotator\n"
    )
    # what an annotator would type to reach admin data (a dropdown's value must be one it offers: Gradio checks)
    overrides = {"train-data-file": str(ws.root / f"{ADMIN_DATA}.jsonl"), "train-model": str(ws.root)}
    outcomes, leaks, admin_sees = {}, {}, {}
    with running_app(ws.root, tiny_model_dir, "--auth", str(users)) as (_, url):
        bob = _sign_in(url, "bob", "bob-password")
        config = bob.get(f"{url}config").json()
        assert not _leaks(json.dumps(config), []), "the page's own config holds admin data"
        alice = _sign_in(url, "alice", "alice-password")
        stranger = httpx.Client(timeout=30)
        assert stranger.get(f"{url}config").status_code in (401, 403)
        for dependency in config["dependencies"]:
            if not dependency.get("backend_fn"):
                continue  # runs in the browser only
            key, index = _key(config, dependency), dependency["id"]
            trigger = dependency["targets"][0][0] if dependency["targets"] else None
            data = _inputs(config, dependency, overrides)
            assert _call(stranger, url, index, trigger, data) == ("refused", "401"), key
            status, answer = outcomes[key] = _call(bob, url, index, trigger, data)
            if _leaks(answer, data):
                leaks[key] = answer
            if key in SHOWN_TO_ADMINS:  # the seeds are where the handlers read: an admin sees them
                admin_sees[key] = _leaks(_call(alice, url, index, trigger, data)[1], data)
    seen = {key: ADMIN if "is for admins" in answer else OWN for key, (status, answer) in outcomes.items()}
    (root / "outcomes.json").write_text(json.dumps({"seen": seen, "outcomes": outcomes}, indent=1))
    assert admin_sees == dict.fromkeys(SHOWN_TO_ADMINS, True)
    assert not leaks, f"admin data or another annotator's labels reached an annotator: {leaks}"
    missing, stale = sorted(set(seen) - set(EXPECTED)), sorted(set(EXPECTED) - set(seen))
    assert not missing and not stale, f"place every handler in EXPECTED: new {missing}, gone {stale}"
    wrong = {key: (EXPECTED[key], seen[key], outcomes[key][1][:200]) for key in seen if seen[key] != EXPECTED[key]}
    assert not wrong, f"(expected, seen, answer) per handler: {wrong}"
