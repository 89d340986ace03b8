"""Overlap over HTTP (issue 34 item 2): two signed-in annotators label the queue at the same time with 2 annotators
per pair (set with the real CLI); every pair gets exactly both of them, nobody is shown a pair twice, the admin's
export holds the consensus rows a hand computation gives and every individual label, and the annotators' kappa is
scikit-learn's on the same labels."""

from __future__ import annotations

import json
import threading

import pytest
from servers import cli, running_app

from alignstudio.core.label_queue import LabelQueue
from alignstudio.core.store import Store
from alignstudio.core.workspace import Workspace
from alignstudio.services.auth import hash_password

pytestmark = pytest.mark.slow

PAIRS = 5
QUEUE_CONFIG = ["labeling queue (most uncertain first)", "default", "", "(same as A)", 0.7, 1.0, 0.95, 6, None]


def _prompt(outputs) -> str:
    """The question on screen ("" for the placeholder once nothing is left for this annotator)."""
    text = next((o for o in outputs if isinstance(o, str) and "**Prompt**" in o), "")
    return text.split("\n\n", 1)[1].strip() if "Question" in text else ""


def test_two_annotators_with_overlap_two_over_http(tmp_path, tiny_model_dir):
    from datasets import load_from_disk
    from gradio_client import Client
    from sklearn.metrics import cohen_kappa_score

    from alignstudio.services.data.annotators import annotator_quality

    workspace = Workspace.open(tmp_path / "ws")
    store = Store(workspace.db_path)
    ids = [
        store.add_pair(
            [{"role": "user", "content": f"Question {i}?"}], f"good {i}", f"bad {i}", model_a="m", model_b="m"
        )
        for i in range(PAIRS)
    ]
    LabelQueue(store).fill({pid: i for i, pid in enumerate(ids)})
    store.close()
    told = cli("queue", "--overlap", "2", "--status", workspace=workspace.root)
    assert told.returncode == 0, told.stderr
    assert f"queue: 2 annotators per pair: 0 pairs complete · 0 in progress · {PAIRS} pending" in told.stdout
    users = tmp_path / "users.txt"
    users.write_text(
        "".join(f"{name}:{hash_password(name + '-password')}:{role}\n" for name, role in
                (("ann", "annotator"), ("bob", "annotator"), ("root", "admin")))
    )  # fmt: skip
    config = [*QUEUE_CONFIG[:2], str(tiny_model_dir), *QUEUE_CONFIG[3:]]
    seen: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    with running_app(workspace.root, tiny_model_dir, "--auth", str(users)) as (_, url):
        clients = {name: Client(url, auth=(name, f"{name}-password"), verbose=False) for name in ("ann", "bob", "root")}

        def label_all(name: str) -> None:
            client, mine = clients[name], []
            try:
                question = _prompt(client.predict("", *config, api_name="/label_first_pair"))
                while question:
                    mine.append(question)
                    client.predict("", "", *config, api_name="/label_left")  # the answer shown on the left
                    question = _prompt(client.predict("", *config, api_name="/label_next"))
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
            seen[name] = mine

        threads = [threading.Thread(target=label_all, args=(name,)) for name in ("ann", "bob")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        status = clients["ann"].predict("", *config, api_name="/label_first_pair")[-1]
        assert f"2 annotators per pair: {PAIRS} pairs complete · 0 in progress · 0 pending" in status
        clients["root"].predict(api_name="/data_export")
    questions = sorted(f"Question {i}?" for i in range(PAIRS))
    assert sorted(seen["ann"]) == questions and sorted(seen["bob"]) == questions  # each pair once to each of them

    store = Store(workspace.db_path)
    labels = store.labels()
    assert sorted((label.pair_id, label.annotator) for label in labels) == sorted(
        (pid, name) for pid in ids for name in ("ann", "bob")
    )
    verdicts = {(label.pair_id, label.annotator): label.verdict for label in labels}
    # by hand: a pair both gave the same verdict becomes a row (chosen: that side); a 1-1 split is dropped
    expected = sorted(
        (f"Question {i}?", f"{'good' if verdicts[pid, 'ann'] == 'A' else 'bad'} {i}")
        for i, pid in enumerate(ids)
        if verdicts[pid, "ann"] == verdicts[pid, "bob"]
    )
    snapshot = store.snapshots()[0]["path"]
    rows = load_from_disk(snapshot).to_list()
    assert sorted((row["prompt"][-1]["content"], row["chosen"][0]["content"]) for row in rows) == expected
    individual = [json.loads(line) for line in open(f"{snapshot}/labels.jsonl", encoding="utf-8")]
    assert sorted((row["pair_id"], row["annotator"], row["verdict"]) for row in individual) == sorted(
        (pid, name, verdict) for (pid, name), verdict in verdicts.items()
    )
    ann = [verdicts[pid, "ann"] for pid in ids]
    bob = [verdicts[pid, "bob"] for pid in ids]
    kappa = annotator_quality(store.preference_rows()).pairs[0]
    if len(set(ann) | set(bob)) > 1:  # kappa is undefined when both gave one and the same verdict throughout
        assert kappa.kappa == pytest.approx(cohen_kappa_score(ann, bob), abs=1e-4)
    assert kappa.shared == PAIRS
