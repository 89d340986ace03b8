"""Active labeling: the uncertainty order on a case with a known answer, the queue, and the real margins."""

import shutil
import threading

import numpy as np
import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.label_queue import LabelQueue
from alignstudio.core.models import load_causal_lm, load_tokenizer
from alignstudio.services.labeling.active import (
    implicit_margins,
    judge_disagreement,
    labels_saved,
    sequence_logprobs,
    uncertainty_order,
    unlabeled_pairs,
)
from alignstudio.services.sampling.sampler import Generator

MSG = [{"role": "user", "content": "Say hi."}]


def write_run(folder, policy_dir, reference_dir, beta, method="dpo"):
    """A finished DPO run folder as the worker leaves it, as far as the implicit reward reads it: spec.json
    (written by RunSpec) naming the reference and beta, and the trained model in model/."""
    from servers import ROOT

    from alignstudio.training.spec import RunSpec

    shutil.copytree(policy_dir, folder / "model")
    RunSpec(
        method=method, model=str(reference_dir), data=str(ROOT / "data" / "example_preferences.jsonl"), beta=beta
    ).save(folder / "spec.json")
    return folder


def test_order_puts_disputes_then_smallest_margins_first():
    margins = {"sure": 3.0, "unsure": 0.01, "middle": -0.5, "disputed": 2.5}
    assert uncertainty_order(margins, {"disputed"}) == ["disputed", "unsure", "middle", "sure"]


def test_labels_saved_on_a_known_case():
    # 100 pairs; the policy is wrong exactly on the 10 with the smallest |margin|
    rng = np.random.default_rng(0)
    margins = {
        f"p{i}": float(m) for i, m in enumerate(np.concatenate([rng.uniform(-0.05, 0.05, 10), rng.uniform(1, 3, 90)]))
    }
    truth = {
        pid: ("B" if m > 0 else "A") if i < 10 else ("A" if m > 0 else "B")
        for i, (pid, m) in enumerate(margins.items())
    }
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
    one, batched = (
        sequence_logprobs(ref, [MSG], ["Hello there!"]),
        sequence_logprobs(ref, [MSG, MSG], ["Hello there!", "x"]),
    )
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
        run = write_run(tmp_path / "run", tiny_model_dir, second_tiny_model_dir, beta=0.1)
        services.store.register_model("policy-1", run / "model", kind="full", run_dir=run)
        with pytest.raises(UserError, match="no unlabeled pairs"):
            label.fill_queue(services, label.BY_POLICY)
        for i in range(3):
            services.store.add_pair(
                [{"role": "user", "content": f"Question {i}?"}], f"Yes {i}.", f"No, {i}.", model_a="m", model_b="m"
            )
        assert label.fill_queue(services, label.BY_POLICY).startswith("Queued 3 pairs")
        shown = services.labeling.next_queued("ann")
        services.labeling.label(shown, "left", annotator="ann")
        assert shown.queued and services.labeling.queue.waiting() == 2  # what is left to label
    finally:
        services.close()


def test_the_judge_the_label_tab_and_the_cli_score_with_the_runs_own_beta_and_reference(
    tmp_path, tiny_model_dir, second_tiny_model_dir, capsys
):
    """One implicit reward: a run trained with beta 0.3 against another model scores with 0.3 and that model
    in the implicit judge, the Label tab's "fill queue by policy" and `alignstudio queue --policy`, whatever the
    app's default model (here the policy's own weights, which as a reference would make every margin 0)."""
    from alignstudio.cli import main as cli_main
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services
    from alignstudio.services.judges import JudgeInput
    from alignstudio.services.judges.config import JudgeConfig, build_judge
    from alignstudio.services.labeling.active import scorer
    from alignstudio.ui import label

    services = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir))
    try:
        run = write_run(tmp_path / "run-beta-0.3", tiny_model_dir, second_tiny_model_dir, beta=0.3)
        services.store.register_model("policy-b", run / "model", kind="full", run_dir=run)
        pool = services.generators
        policy, reference = pool.get(str(run / "model")), pool.get(str(second_tiny_model_dir))
        judge = build_judge(JudgeConfig(kind="implicit", model="policy-b"), store=services.store, generators=pool)
        by_tab, by_cli = services.labeling.scorer("policy"), scorer(pool, policy=str(run))
        for used in (judge, by_tab, by_cli):
            assert used.beta == 0.3 and used.reference is reference and used.policy is policy
        ids = [
            services.store.add_pair(
                [{"role": "user", "content": f"Question {i}?"}],
                f"Yes, gladly {i}.",
                f"No {i}.",
                model_a="m",
                model_b="m",
            )
            for i in range(3)
        ]
        pairs = [services.store.pair(pid) for pid in ids]
        expected = implicit_margins(policy, reference, pairs, 0.3)
        assert np.abs(expected).min() > 1e-3  # the default model as the reference would give 0
        assert np.allclose(by_tab(pairs), expected) and np.allclose(by_cli(pairs), expected)
        verdict = judge.judge(JudgeInput(pairs[0].messages, pairs[0].text_a, pairs[0].text_b))
        assert verdict.scores["margin"] == pytest.approx(expected[0], abs=1e-5)
        reasons = {pid: f"margin {m:+.3f}" for pid, m in zip(ids, expected)}

        def queued() -> dict[str, str]:  # {pair: reason}; each reader is handed its own item again, as it is now
            queue = LabelQueue(services.store)
            return dict(queue.claim(f"reader{i}") for i in range(3))

        assert label.fill_queue(services, label.BY_POLICY).startswith("Queued 3 pairs")
        assert queued() == reasons
        LabelQueue(services.store).fill({pid: 0.0 for pid in ids}, {pid: "stale" for pid in ids})
        assert cli_main(["--workspace", str(services.workspace.root), "queue", "--policy", "policy-b"]) == 0
        assert "queue: 3 pairs waiting" in capsys.readouterr().out
        assert queued() == reasons
    finally:
        services.close()


def test_a_model_without_a_dpo_run_has_no_implicit_reward(tmp_path, tiny_model_dir):
    from alignstudio.core.workspace import Workspace
    from alignstudio.services.container import Services

    services = Services.build(Workspace.open(tmp_path / "ws"), default_model=str(tiny_model_dir))
    try:
        services.store.register_model("plain", tiny_model_dir, kind="full")
        with pytest.raises(UserError, match="plain is not a trained run"):
            services.labeling.scorer("policy")
        run = write_run(tmp_path / "orpo-run", tiny_model_dir, tiny_model_dir, beta=0.1, method="orpo")
        services.store.register_model("orpo-1", run / "model", kind="full", run_dir=run)
        with pytest.raises(UserError, match="trained with orpo; the implicit reward needs a DPO or KTO run"):
            services.labeling.scorer("policy")
    finally:
        services.close()
