"""The Label and Feedback tabs while no item is ready (the plain handlers over real services on a tiny model): a
placeholder in the item's place, the verdict buttons off, the timer on, no error; then the next item, once."""

import time

import gradio as gr
import pytest

from alignstudio.core.label_queue import LabelQueue
from alignstudio.core.workspace import Workspace
from alignstudio.services.container import Services
from alignstudio.ui import feedback, label


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir):
    built = Services.build(
        Workspace.open(tmp_path_factory.mktemp("ws")), default_model=str(tiny_model_dir), prefetch_depth=1
    )
    yield built
    built.close()


def _config(model, source=label.FRESH) -> list:
    return [source, "default", str(model), "(same as A)", 0.7, 1.0, 0.95, 6, None, "", ""]


def _buttons_and_timer(settled: tuple, buttons: int) -> tuple[list[bool], bool]:
    *_, timer = settled
    return [update["interactive"] for update in settled[-1 - buttons : -1]], timer.active


def test_an_empty_queue_is_a_wait_with_the_buttons_off_until_a_pair_is_queued(services, tiny_model_dir):
    config = _config(tiny_model_dir, label.QUEUE)
    state, prompt, left, right, _, _, status = label.next_pair(services, {}, "eve", *config)  # no error raised
    assert state["shown"] is None and state["waiting"]
    assert "labeling queue is empty" in prompt and "waiting for queued pairs" in prompt and left == right == ""
    assert "0 left in the queue" in status
    live, timer = _buttons_and_timer(label.settle(services, state), len(label.VERDICT_BUTTONS))
    assert live == [False] * len(label.VERDICT_BUTTONS) and timer  # nothing to click; the tab asks again
    assert _skipped(label.poll(services, state, "eve", *config))  # still empty

    pair = services.store.add_pair(
        [{"role": "user", "content": "Queued question?"}], "Yes, queued.", "No, not queued.", model_a="m", model_b="m"
    )
    LabelQueue(services.store).fill({pair: 0.0})
    arrived = label.poll(services, state, "eve", *config)
    assert arrived[0]["shown"]["pair_id"] == pair and "Queued question?" in arrived[1]
    # a second tick sent with the same waiting state (before the first answer arrived) hands out nothing more
    assert _skipped(label.poll(services, state, "eve", *config))
    settled = label.settle(services, arrived[0])
    live, timer = _buttons_and_timer(settled, len(label.VERDICT_BUTTONS))
    assert live == [True] * len(label.VERDICT_BUTTONS) and not timer
    assert "Queued question?" in label.restore(services, arrived[0])[0]  # after a failed skip: shown again
    assert _skipped(label.restore(services, state))  # nothing to show again while waiting


def _skipped(outputs: tuple) -> bool:
    return all(isinstance(v, type(gr.skip())) for v in outputs)


def test_after_a_label_with_nothing_ready_the_labeled_pair_leaves_the_screen(services, tiny_model_dir):
    config = _config(tiny_model_dir)
    state, *_ = label.next_pair(services, {}, "fay", *config)
    label.acknowledge(services, "left", state, "fay", "", *config)
    # settings never asked for before: their feed has just started, so nothing is ready (sampling is behind)
    behind = [*config[:8], 4242, "", ""]
    held = label.hold(services, state, *behind)
    assert "Sampling the next pair" in held[0] and held[1] == held[2] == ""
    assert [update["interactive"] for update in held[3:]] == [False] * len(label.VERDICT_BUTTONS)
    live, _ = _buttons_and_timer(label.settle(services, state), len(label.VERDICT_BUTTONS))
    assert live == [False] * len(label.VERDICT_BUTTONS)  # the labeled pair is never clickable again
    shown_next = label.advance(services, state, "fay", *config)
    assert shown_next[0]["shown"]["key"] != state["shown"]["key"]
    live, _ = _buttons_and_timer(label.settle(services, shown_next[0]), len(label.VERDICT_BUTTONS))
    assert live == [True] * len(label.VERDICT_BUTTONS)


def test_the_feedback_tab_holds_waits_and_settles_the_same_way(services, tiny_model_dir):
    config = ["default", str(tiny_model_dir), 0.7, 0.95, 6, None]
    state, *_ = feedback.next_response(services, {}, "gus", *config)
    live, timer = _buttons_and_timer(feedback.settle(services, state), 2)
    assert live == [True, True] and not timer
    feedback.rate(services, "up", state, "gus", "", *config)
    behind = [*config[:5], 4343]
    held = feedback.hold(services, *behind)
    assert "Sampling the next response" in held[0] and held[1] == ""
    assert [update["interactive"] for update in held[2:]] == [False, False]
    live, _ = _buttons_and_timer(feedback.settle(services, state), 2)
    assert live == [False, False]
    waiting = {"shown": None, "waiting": "w1"}
    live, timer = _buttons_and_timer(feedback.settle(services, waiting), 2)
    assert live == [False, False] and timer
    for _ in range(60):  # the timer's ticks: nothing changes until a response is ready
        arrived = feedback.poll(services, waiting, "gus", *[*config[:5], 4444])
        if not _skipped(arrived):
            break
    assert arrived[0]["shown"]["key"] and "Prompt" in arrived[1]
    assert _skipped(feedback.poll(services, waiting, "gus", *config))  # once per wait


def test_sampling_that_gives_up_while_the_tab_waits_stops_the_asking(services, tiny_model_dir):
    """A waiting tab asks again every 2 s; a feed that gave up (every pair near-identical) is not started again by
    those asks (a request per answer on a remote model): the tab says sampling stopped, and the timer goes off."""
    alike = [label.FRESH, "default", str(tiny_model_dir), "(same as A)", 0.05, 0.05, 0.01, 1, 3, "", ""]
    failed = services.feeds.feed(label.feed_config("pair", *alike[1:]))
    for _ in range(600):
        if failed.error:
            break
        time.sleep(0.2)
    assert failed.error  # every attempt came back unusable: the feed gave up
    state = {"shown": None, "waiting": "w-alike"}
    answer = label.poll(services, state, "hana", *alike)
    assert "sampling stopped" in answer[1] and "press Skip to try again" in answer[1]
    assert services.feeds._feeds[label.feed_config("pair", *alike[1:])] is failed  # not started again
    assert not answer[0].get("waiting") and answer[0]["shown"] is None
    live, timer = _buttons_and_timer(label.settle(services, answer[0]), len(label.VERDICT_BUTTONS))
    assert live == [False] * len(label.VERDICT_BUTTONS) and not timer  # nothing more is asked by itself
