"""Overlap and consensus (issue 34 item 2): N distinct annotators per pair, never one twice, progress per campaign,
the consensus snapshots read when N is above 1, and every individual label kept in the export."""

import json
import threading
from collections import Counter, defaultdict

import pytest
from sklearn.metrics import cohen_kappa_score

from alignstudio.core import access
from alignstudio.core.access import ADMIN, ANNOTATOR, Caller, acting_as
from alignstudio.core.errors import UserError
from alignstudio.core.label_queue import LabelQueue
from alignstudio.services.campaigns import QUEUE
from alignstudio.services.consensus import PairConsensus, cohen_kappa, human_consensus, pair_consensus
from alignstudio.services.data.browser import label_table
from alignstudio.services.data.snapshots import dpo_rows, export_snapshot
from alignstudio.services.labeling import LabelingService
from alignstudio.services.sampling.prefetch import NothingReady


def _pairs(store, n: int) -> list[str]:
    return [
        store.add_pair(
            [{"role": "user", "content": f"Question {i}?"}], f"good {i}", f"bad {i}", model_a="m", model_b="m"
        )
        for i in range(n)
    ]


def _queued(store, n: int, overlap: int, split: str = "drop") -> tuple[LabelingService, list[str]]:
    ids = _pairs(store, n)
    labeling = LabelingService(store, feeds=None)
    labeling.queue.fill({pid: i for i, pid in enumerate(ids)})
    labeling.campaigns.configure(QUEUE, overlap, split)
    return labeling, ids


def test_the_queue_hands_each_pair_to_n_distinct_annotators_and_never_twice_to_one(store):
    labeling, ids = _queued(store, 4, overlap=2)
    queue = labeling.queue
    first = queue.claim("ann")[0]
    assert queue.claim("ann")[0] == first  # a reload gives the same item back
    assert queue.claim("bob")[0] == first  # a second place on the same pair
    assert queue.claim("cat")[0] != first  # both places of the first pair are taken
    queue.complete(first, "ann")
    queue.complete(first, "bob")
    with pytest.raises(UserError, match="another annotator"):
        queue.complete(first, "dan")  # two annotators have it: a third is refused
    served = defaultdict(list)
    for name in ("ann", "bob", "cat"):
        while sum(map(len, served.values())) < 20 and (item := queue.claim(name)) is not None:  # bounded
            served[item[0]].append(name)
            queue.complete(item[0], name)
    served[first] += ["ann", "bob"]
    assert sorted(served) == sorted(ids)
    assert all(len(names) == 2 == len(set(names)) for names in served.values())
    assert queue.waiting() == 0
    progress = labeling.campaigns.progress(QUEUE)
    assert (progress.complete, progress.in_progress, progress.pending) == (4, 0, 0)
    assert progress.line() == "2 annotators per pair: 4 pairs complete · 0 in progress · 0 pending"


def test_a_lapsed_claim_frees_its_place_and_progress_counts_each_state(store):
    labeling, ids = _queued(store, 3, overlap=2)
    queue = labeling.queue
    assert queue.claim("ann")[0] == ids[0]
    queue.complete(ids[0], "ann")
    assert queue.claim("ann")[0] == ids[1]  # on ann's screen
    progress = labeling.campaigns.progress(QUEUE)
    assert (progress.complete, progress.in_progress, progress.pending) == (0, 1, 2)
    assert queue.claim("bob")[0] == ids[0]
    queue.complete(ids[0], "bob")
    assert queue.claim("cat")[0] == ids[1]  # the second place of ann's pair
    assert queue.claim("dan")[0] == ids[2]  # ids[1] has ann's and cat's live claims
    queue.campaigns.lease_s = 0.0  # every open claim lapses
    assert queue.claim("eve")[0] == ids[1]
    assert labeling.campaigns.progress(QUEUE).complete == 1


def test_three_annotators_labeling_at_once_store_no_duplicates(store):
    labeling, ids = _queued(store, 12, overlap=2)
    errors = []

    def work(name):
        try:
            for _ in range(20):  # bounded: 8 pairs each at most, whatever a wrong claim would do
                try:
                    shown = labeling.next_queued(name)
                except NothingReady:
                    return
                labeling.label(shown, "left", annotator=name)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("ann", "bob", "cat")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    labels = store.labels()
    per_pair = Counter(label.pair_id for label in labels)
    assert per_pair == dict.fromkeys(ids, 2)
    assert len({(label.pair_id, label.annotator) for label in labels}) == len(labels) == 24
    assert labeling.queue.waiting() == 0


def test_undo_frees_the_pair_until_it_is_labeled_anew(store):
    labeling, ids = _queued(store, 1, overlap=1)
    shown = labeling.next_queued("ann")
    labeling.label(shown, "left", annotator="ann")
    assert labeling.queue.waiting() == 0
    again = labeling.undo_last("ann")
    assert again.claimed and labeling.queue.waiting() == 1
    labeling.label(again, "right", annotator="ann")
    assert labeling.queue.waiting() == 0 and labeling.campaigns.progress(QUEUE).complete == 1


def test_only_admins_set_overlap_and_bad_settings_name_the_field(store):
    labeling = LabelingService(store, feeds=None)
    access.configure(role_of={"root": ADMIN, "bob": ANNOTATOR}.__getitem__)
    try:
        with acting_as(Caller("bob", ANNOTATOR)), pytest.raises(UserError, match="for admins"):
            labeling.campaigns.configure(QUEUE, 2)
        with acting_as(Caller("root", ADMIN)):
            with pytest.raises(UserError, match="Annotators per pair must be between 1 and 10"):
                labeling.campaigns.configure(QUEUE, 0)
            with pytest.raises(UserError, match="Disagreements must be one of drop, weight"):
                labeling.campaigns.configure(QUEUE, 2, "vote")
            assert labeling.campaigns.settings(QUEUE).overlap == 1  # nothing changed
            assert labeling.campaigns.configure(QUEUE, 3, "weight").overlap == 3
    finally:
        access.reset()


def test_consensus_is_the_majority_with_its_agreement_and_the_split_setting_decides():
    records = [
        {"pair_id": "p1", "annotator": a, "source": "human", "verdict": v}
        for a, v in (("ann", "A"), ("bob", "A"), ("cat", "A"))
    ]
    records += [
        {"pair_id": "p2", "annotator": a, "source": "human", "verdict": v}
        for a, v in (("ann", "A"), ("bob", "B"), ("cat", "B"))
    ]
    records += [
        {"pair_id": "p3", "annotator": a, "source": "human", "verdict": v} for a, v in (("ann", "A"), ("bob", "B"))
    ]
    records += [{"pair_id": "p3", "annotator": "judge", "source": "judge:x", "verdict": "A"}]  # not a human vote
    consensus = pair_consensus(records)
    assert consensus == {
        "p1": PairConsensus("A", 1.0, 3),
        "p2": PairConsensus("B", round(2 / 3, 4), 3),
        "p3": PairConsensus(None, 0.0, 2),
    }
    assert [pid for pid, c in consensus.items() if c.kept("drop")] == ["p1"]
    assert [pid for pid, c in consensus.items() if c.kept("weight")] == ["p1", "p2"]
    assert human_consensus(records) == {"p1": "A", "p2": "B"}  # the one rule behind both


@pytest.mark.parametrize("split", ["drop", "weight"])
def test_snapshots_read_the_consensus_when_overlap_is_above_one(store, workspace, split):
    ids = _pairs(store, 4)
    votes = {ids[0]: "AAA", ids[1]: "ABB", ids[2]: "AB", ids[3]: "BB"}
    for pid, verdicts in votes.items():
        for name, verdict in zip(("ann", "bob", "cat"), verdicts):
            store.add_preference(pid, verdict, annotator=name, shown_left="A")
    store.add_preference(ids[2], "A", source="judge:x")  # a judge does not break the humans' tie
    before = dpo_rows(store)
    assert "weight" not in before[0]  # overlap 1: the usual majority, no weight column
    assert len(before) == 4  # ids[2]: A twice (ann, the judge) against B once
    LabelingService(store, feeds=None).campaigns.configure(QUEUE, 3, split)
    LabelQueue(store).fill({pid: 0 for pid in ids})
    snap = export_snapshot(store, workspace, "dpo")
    from datasets import load_from_disk

    rows = load_from_disk(str(snap.path)).to_list()
    # by hand (pair i asks "Question i?", A is "good i"): 0 unanimous A, 1 B by 2 of 3, 2 a tie, 3 unanimous B
    expected = [(0, "good", 1.0), (3, "bad", 1.0)] + ([(1, "bad", round(2 / 3, 4))] if split == "weight" else [])
    got = sorted((row["prompt"][0]["content"], row["chosen"][0]["content"], row["weight"]) for row in rows)
    assert got == sorted((f"Question {i}?", f"{side} {i}", weight) for i, side, weight in expected)
    assert snap.left_out["pairs whose annotators tied (no majority)"] == 1
    if split == "drop":
        assert snap.left_out["pairs whose annotators disagreed (disagreements: drop)"] == 1
    individual = [json.loads(line) for line in (snap.path / "labels.jsonl").read_text().splitlines()]
    assert len(individual) == 11 and {row["annotator"] for row in individual} == {"ann", "bob", "cat", ""}
    assert sorted((r["pair_id"], r["annotator"], r["verdict"]) for r in individual if r["source"] == "human") == sorted(
        (pid, name, verdict) for pid, vs in votes.items() for name, verdict in zip(("ann", "bob", "cat"), vs)
    )


def test_annotators_see_only_their_own_verdicts_and_kappa_is_scikit_learns(store):
    ids = _pairs(store, 6)
    ann, bob = "ABABAA", "ABBBAB"
    for pid, a, b in zip(ids, ann, bob):
        store.add_preference(pid, a, annotator="ann", shown_left="A")
        store.add_preference(pid, b, annotator="bob", shown_left="A")
    access.configure(role_of={"ann": ANNOTATOR, "bob": ANNOTATOR}.__getitem__)
    try:
        with acting_as(Caller("bob", ANNOTATOR)):
            assert set(label_table(store)["annotator"]) == {"bob"}  # ann's verdicts on the same pairs stay hidden
    finally:
        access.reset()
    assert cohen_kappa(list(ann), list(bob)) == pytest.approx(cohen_kappa_score(list(ann), list(bob)))


def test_a_prompt_set_campaign_serves_labeled_pairs_to_others_before_sampling_new_ones(tmp_path, tiny_model_dir):
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services
    from alignstudio.ui import label

    services = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir), prefetch_depth=1)
    config = [label.FRESH, "default", str(tiny_model_dir), "(same as A)", 0.7, 1.0, 0.95, 6, None, "", ""]
    try:
        services.labeling.campaigns.configure("default", 2)

        def shown(name):
            state, *_, status = label.next_pair(services, {}, name, *config)
            return state, status

        eve_state, _ = shown("eve")
        first = eve_state["shown"]["pair_id"]
        label.acknowledge(services, "left", eve_state, "eve", "", *config)
        fay_state, status = shown("fay")
        assert fay_state["shown"]["pair_id"] == first  # labeled once: handed to fay before a new sample
        assert "2 annotators per pair: 0 pairs complete · 1 in progress · 0 pending" in status
        label.acknowledge(services, "right", fay_state, "fay", "", *config)
        eve_next, _ = shown("eve")
        assert eve_next["shown"]["pair_id"] != first  # complete: eve gets a new one, never the same twice
        gus_state, status = shown("gus")
        assert gus_state["shown"]["pair_id"] not in (first, eve_next["shown"]["pair_id"])  # eve's is not labeled yet
        assert "1 pair complete · 2 in progress" in status
    finally:
        services.close()
    assert Counter(x.annotator for x in services.store.labels() if x.pair_id == first) == {"eve": 1, "fay": 1}


def test_the_cli_sets_overlap_and_prints_progress(workspace, store, capsys):
    from alignstudio.cli import main as cli_main

    _queued(store, 2, overlap=1)
    assert cli_main(["--workspace", str(workspace.root), "queue", "--overlap", "2", "--split", "weight"]) == 0
    assert "campaign queue: 2 annotators per pair, disagreements: weight" in capsys.readouterr().out
    assert cli_main(["--workspace", str(workspace.root), "queue", "--status"]) == 0
    assert "queue: 2 annotators per pair: 0 pairs complete · 0 in progress · 2 pending" in capsys.readouterr().out
    assert cli_main(["--workspace", str(workspace.root), "queue", "--overlap", "2", "--campaign", "nosuch"]) == 2
    assert "no prompt set named 'nosuch'" in capsys.readouterr().err


def test_the_data_tabs_campaign_panel_sets_overlap_for_admins_only(services):
    from alignstudio.ui import campaigns

    message, table = campaigns.save(services, "default", 2, "weight")
    assert message.startswith("Saved: **default**, 2 annotators per pair: 0 pairs complete")
    assert table.set_index("campaign").loc["default", "annotators per pair"] == 2
    assert campaigns.show(services, "default")[:2] == (2, "weight")
    assert "queue" in campaigns.campaign_names(services)
    access.configure(role_of={"bob": ANNOTATOR}.__getitem__)
    try:
        with acting_as(Caller("bob", ANNOTATOR)), pytest.raises(UserError, match="for admins"):
            campaigns.save(services, "default", 3, "drop")
    finally:
        access.reset()
    assert campaigns.show(services, "default")[0] == 2
