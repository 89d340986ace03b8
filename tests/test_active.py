"""Active labeling: the uncertainty order on a case with a known answer, the queue, and the real margins."""

import threading

import numpy as np
import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.label_queue import LabelQueue
from alignstudio.core.models import load_causal_lm, load_tokenizer
from alignstudio.services.labeling.active import (implicit_margins, judge_disagreement, labels_saved, sequence_logprobs,
                                         uncertainty_order, unlabeled_pairs)
from alignstudio.services.sampling.sampler import Generator

MSG = [{"role": "user", "content": "Say hi."}]


def test_order_puts_disputes_then_smallest_margins_first():
    margins = {"sure": 3.0, "unsure": 0.01, "middle": -0.5, "disputed": 2.5}
    assert uncertainty_order(margins, {"disputed"}) == ["disputed", "unsure", "middle", "sure"]


def test_labels_saved_on_a_known_case():
    # 100 pairs; the policy is wrong exactly on the 10 with the smallest |margin|
    rng = np.random.default_rng(0)
    margins = {f"p{i}": float(m) for i, m in enumerate(np.concatenate([rng.uniform(-0.05, 0.05, 10),
                                                                       rng.uniform(1, 3, 90)]))}
    truth = {pid: ("B" if m > 0 else "A") if i < 10 else ("A" if m > 0 else "B")
             for i, (pid, m) in enumerate(margins.items())}
    result = labels_saved(margins, truth, target_fraction=1.0)
    assert result["informative"] == 10 and result["active"] == 10
    assert result["random"] > 80 and result["saved"] > 70


def test_queue_hands_each_item_to_one_annotator(store):
    ids = [store.add_pair(MSG, f"a{i}", f"b{i}", model_a="m", model_b="m") for i in range(40)]
    queue = LabelQueue(store)
    queue.fill({pid: i for i, pid in enumerate(ids)})
    got: dict[str, list[str]] = {}
    lock = threading.Lock()

    def work(name):
        mine = []
        while (item := queue.claim(name)) is not None:
            queue.complete(item[0], name)
            mine.append(item[0])
        with lock:
            got[name] = mine

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handed = [pid for items in got.values() for pid in items]
    assert sorted(handed) == sorted(ids)  # every item once, none twice
    assert queue.waiting() == 0
    with pytest.raises(UserError):
        queue.claim("  ")


def test_claim_returns_your_open_item_first(store):
    ids = [store.add_pair(MSG, f"a{i}", f"b{i}", model_a="m", model_b="m") for i in range(3)]
    queue = LabelQueue(store)
    queue.fill({pid: i for i, pid in enumerate(ids)})
    first = queue.claim("ann")[0]
    assert queue.claim("ann")[0] == first  # a reload gives the same item back
    assert queue.claim("bob")[0] != first
    with pytest.raises(UserError, match="another annotator"):
        queue.complete(first, "bob")


def test_judge_disputes_and_unlabeled(store):
    p1 = store.add_pair(MSG, "a", "b", model_a="m", model_b="m")
    p2 = store.add_pair(MSG, "c", "d", model_a="m", model_b="m")
    store.add_preference(p1, "A", source="judge:x")
    store.add_preference(p1, "B", source="judge:y")
    store.add_preference(p2, "A", source="human")
    assert judge_disagreement(store) == {p1}
    assert [p.id for p in unlabeled_pairs(store)] == [p1]


def test_margins_are_zero_for_identical_policy_and_reference(store, tiny_model_dir, second_tiny_model_dir):
    ref = Generator("ref", load_causal_lm(tiny_model_dir), load_tokenizer(tiny_model_dir))
    other = Generator("other", load_causal_lm(second_tiny_model_dir), load_tokenizer(second_tiny_model_dir))
    pair = store.pair(store.add_pair(MSG, "Hello there!", "Go away.", model_a="m", model_b="m"))
    assert np.allclose(implicit_margins(ref, ref, [pair]), 0.0, atol=1e-5)
    assert abs(implicit_margins(other, ref, [pair])[0]) > 1e-4
    one, batched = sequence_logprobs(ref, [MSG], ["Hello there!"]), sequence_logprobs(ref, [MSG, MSG], ["Hello there!", "x"])
    assert np.isclose(one[0], batched[0], atol=1e-3) and one[0] < 0


def test_the_label_tab_fills_the_queue_itself(tmp_path, tiny_model_dir, second_tiny_model_dir):
    """Queue mode offers its own fill: the newest trained model orders the unlabeled pairs (no CLI needed)."""
    from alignstudio.core.errors import UserError
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services
    from alignstudio.ui import label

    services = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir))
    try:
        with pytest.raises(UserError, match="no trained model yet"):
            label.fill_queue(services, label.BY_POLICY)
        services.store.register_model("policy-1", second_tiny_model_dir, kind="full")
        with pytest.raises(UserError, match="no unlabeled pairs"):
            label.fill_queue(services, label.BY_POLICY)
        for i in range(3):
            services.store.add_pair([{"role": "user", "content": f"Question {i}?"}], f"Yes {i}.", f"No, {i}.",
                                    model_a="m", model_b="m")
        assert label.fill_queue(services, label.BY_POLICY).startswith("Queued 3 pairs")
        shown = services.labeling.next_queued("ann")
        services.labeling.label(shown, "left", annotator="ann")
        assert shown.queued and services.labeling.queue.waiting() == 2  # what is left to label
    finally:
        services.close()
