"""Live mode (issue 37) on the tiny model: the held-out split by prompt, bursts that keep the best (kept, carried
over, discarded), rollback to a version's exact weights, and the service's trainer process, burst trigger and
on-policy sampler."""

from __future__ import annotations

import pytest
import torch

from alignstudio.core import access
from alignstudio.core.errors import UserError
from alignstudio.training.live.folder import LiveFolder, LiveSettings, is_heldout, split_labels
from alignstudio.training.split import prompt_key

FRACTION = 0.3


def messages(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def label_row(i: int, text: str, chosen: str = "Yes, gladly.", rejected: str = "No. Never, go away.") -> dict:
    return {
        "id": f"label-{i}-{text}",
        "prompt": messages(text),
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def prompts_by_side(count_train: int, count_heldout: int, start: int = 0, fraction: float = FRACTION):
    """Prompts whose hash puts them on each side (the split decides; the test only picks)."""
    train, held, i = [], [], start
    while len(train) < count_train or len(held) < count_heldout:
        text = f"Question number {i}: what do you say?"
        (held if is_heldout(messages(text), fraction) else train).append(text)
        i += 1
    return train[:count_train], held[:count_heldout]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


# -- the held-out split ----------------------------------------------------------------------------------------


def test_heldout_split_keeps_a_prompt_on_one_side_as_labels_arrive():
    rows = []
    for i in range(400):
        text = f"prompt {i % 60}"
        spaced = f"  {text}\n" if i % 3 == 0 else text  # the same prompt, written with other whitespace
        rows.append(label_row(i, spaced))
    seen_heldout: dict[str, bool] = {}
    for end in range(10, len(rows) + 1, 10):  # the split as labels arrive, ten at a time
        train, held = split_labels(rows[:end], FRACTION)
        train_keys = {prompt_key(r["prompt"]) for r in train}
        held_keys = {prompt_key(r["prompt"]) for r in held}
        assert not train_keys & held_keys  # never both sides
        for key in train_keys | held_keys:
            assert seen_heldout.setdefault(key, key in held_keys) == (key in held_keys)  # never moves
    assert 0.1 < sum(seen_heldout.values()) / len(seen_heldout) < 0.5  # about the fraction of prompts


def test_settings_out_of_range_name_the_field():
    with pytest.raises(UserError, match="every"):
        LiveSettings(every=0).check()
    with pytest.raises(UserError, match="pairs"):
        LiveSettings(pairs="both").check()


# -- bursts on the engine, in this process (the worker runs the same engine) ------------------------------------


@pytest.fixture(scope="module")
def engine(ws, ws_store, tiny_model_dir):
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.training.live.engine import LiveEngine

    # no drift budget: these bursts raise the tiny model's drift past it (test_live_engine.py tests the budget)
    settings = LiveSettings(
        model=str(tiny_model_dir), steps=3, learning_rate=2e-3, heldout_fraction=FRACTION, drift_budget=0
    )
    folder = LiveFolder.create(ws.root / "live" / "engine", settings)
    engine = LiveEngine(folder, ModelRegistry(ws, ws_store))
    engine.load()
    return engine


def add(engine, rows):
    engine.folder.append_labels(rows)


def test_bursts_keep_carry_over_discard_and_roll_back(engine):
    from alignstudio.training.live.engine import adapter_state, version_weights, weights_digest

    folder = engine.folder
    assert folder.version_numbers() == [0] and engine.current == 0
    v0 = version_weights(folder, 0)
    assert same(adapter_state(engine.model), v0)

    # burst 1: consistent labels on both sides -> the held-out loss goes down -> v1
    train, held = prompts_by_side(6, 3)
    add(engine, [label_row(i, t) for i, t in enumerate(train + held)])
    first = engine.burst()
    assert first["outcome"] == "kept" and first["version"] == 1, first
    assert first["after"]["loss"] < first["before"]["loss"]
    assert first["new_labels"] == 6 and first["heldout_labels"] == 3  # held-out labels never train
    v1 = version_weights(folder, 1)
    assert same(adapter_state(engine.model), v1) and not same(v1, v0)
    assert list(engine.model.peft_config) == ["default"]  # no "ref" copy: the reference is the base (adapter off)
    assert folder.card(1)["labels_learned"] == 6 and folder.card(1)["heldout"]["loss"] == first["after"]["loss"]

    # burst 2 trains from v1's weights (tensor-wise), not from the start
    train2, held2 = prompts_by_side(6, 2, start=1000)
    add(engine, [label_row(100 + i, t) for i, t in enumerate(train2 + held2)])
    assert same(adapter_state(engine.model), v1)
    second = engine.burst()
    assert second["start_weights"] == weights_digest(v1) != weights_digest(v0)
    assert second["from_version"] == 1 and second["replayed"] == 6
    assert second["outcome"] == "kept" and second["version"] == 2, second
    v2 = version_weights(folder, 2)
    assert not same(v2, v1)

    # burst 3: new training labels that contradict the held-out ones -> held-out loss up -> discarded, weights
    # back to v2's exactly, no new version
    train3, _ = prompts_by_side(8, 0, start=2000)
    add(
        engine,
        [label_row(200 + i, t, chosen="No. Never, go away.", rejected="Yes, gladly.") for i, t in enumerate(train3)],
    )
    third = engine.burst()
    assert third["outcome"] == "discarded" and third["after"]["loss"] >= third["before"]["loss"], third
    assert "version" not in third and folder.version_numbers() == [0, 1, 2]
    assert same(adapter_state(engine.model), v2)
    assert [b["outcome"] for b in folder.bursts()] == ["kept", "kept", "discarded"]

    # rollback: exactly v1's weights; the next burst plans from v1 (its learned labels)
    engine.rollback(1)
    assert engine.current == 1 and same(adapter_state(engine.model), v1)
    new, replay, _ = engine.plan()
    assert {r["id"] for r in replay} <= set(folder.learned(1)) and not {r["id"] for r in new} & set(folder.learned(1))


def test_a_burst_that_fails_is_recorded_and_the_policy_stays_at_its_version(engine):
    from alignstudio.training.live.engine import adapter_state

    kept, current = adapter_state(engine.model), engine.current
    train, _ = prompts_by_side(1, 0, start=3000)
    broken = {**label_row(300, train[0]), "chosen": 7}  # not an answer: the trainer cannot tokenize it
    engine.folder.append_labels([broken])
    row = engine.burst()
    assert row["outcome"] == "failed" and f"stays at v{current}" in row["note"], row
    assert engine.current == current and same(adapter_state(engine.model), kept)
    assert list(engine.model.peft_config) == ["default"]


# -- the service: the trainer process, the burst trigger, the sampler, who may do what --------------------------


@pytest.fixture
def live(workspace, store):
    from alignstudio.core.registry import ModelRegistry
    from alignstudio.services.live.service import LiveService
    from alignstudio.services.sampling.generators import GeneratorPool

    service = LiveService(workspace, store, GeneratorPool(ModelRegistry(workspace, store)))
    yield service
    service.close()


def test_annotators_may_not_start_burst_or_roll_back(live, tiny_model_dir):
    access.configure(role_of=lambda name: access.ANNOTATOR)
    try:
        with access.acting_as(access.Caller("ann", access.ANNOTATOR)):
            with pytest.raises(UserError, match="for admins"):
                live.start("s", LiveSettings(model=str(tiny_model_dir)))
        assert not (live.root / "s").exists()
    finally:
        access.reset()


@pytest.mark.slow
def test_service_bursts_every_k_labels_and_samples_from_the_newest_version(live, store, tiny_model_dir):
    from alignstudio.services.live.service import LiveLabel
    from alignstudio.services.sampling.settings import SamplingSettings

    live.start(
        "s",
        LiveSettings(
            model=str(tiny_model_dir), every=4, steps=2, learning_rate=2e-3, heldout_fraction=FRACTION, drift_budget=0
        ),
    )
    status = live.wait("s", timeout=300)
    assert status.state == "ready" and status.current == 0 and status.versions == 1

    train, held = prompts_by_side(6, 2)
    labels = [
        LiveLabel(messages(t), "Yes, gladly.", "No. Never, go away.")
        for t in [*train[:3], held[0], *train[3:], held[1]]
    ]
    live.add_labels("s", labels[:3])
    assert live.status("s").pending_requests == 0  # 3 of K=4: no burst yet
    live.add_labels("s", labels[3:4])  # the 4th label: a burst
    status = live.wait("s", timeout=300)
    assert status.bursts == 1 and status.labels == 4
    live.add_labels("s", labels[4:7])
    assert live.wait("s", timeout=60).bursts == 1
    live.add_labels("s", labels[7:])  # the 8th: the second burst
    status = live.wait("s", timeout=300)
    assert status.bursts == 2 and status.state == "ready"
    newest = max(v.number for v in live.versions("s"))
    assert status.current == newest >= 1, live.bursts("s")

    sampling = SamplingSettings(max_new_tokens=6, seed=1, similarity_threshold=1.0)
    pair = live.sample_pairs("s", [messages("Say something.")], sampling)[0]
    assert pair is not None and pair.version == newest
    stored = store.pair(pair.pair_id)
    assert stored.model_a == stored.model_b == f"live-s-v{newest}"

    live.rollback("s", 0)
    assert live.wait("s", timeout=60).current == 0
    pair = live.sample_pairs("s", [messages("Say something else.")], sampling)[0]
    assert store.pair(pair.pair_id).model_a == "live-s-v0" and pair.version == 0
    assert live.stop("s").state == "stopped"
    live.resume("s")  # a new trainer process continues from the version the session was at
    status = live.wait("s", timeout=300)
    assert status.state == "ready" and status.current == 0 and status.versions == newest + 1
    assert live.stop("s").state == "stopped"
