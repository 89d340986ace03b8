"""The prefetch buffer follows the labeling pace: it keeps `depth` samples ready, and more once people wait."""

import time

from alignstudio.core.registry import ModelRegistry
from alignstudio.services.sampling.generators import GeneratorPool
from alignstudio.services.sampling.prefetch import FeedConfig, FeedManager
from alignstudio.services.sampling.prompt_sets import PromptSets
from alignstudio.services.sampling.settings import SamplingSettings


def _wait_for(condition, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        time.sleep(0.05)
    return condition()


def test_waiting_annotators_make_the_buffer_grow_up_to_three_times_its_depth(workspace, store, tiny_model_dir):
    feeds = FeedManager(GeneratorPool(ModelRegistry(workspace, store)), PromptSets(workspace), depth=1)
    config = FeedConfig("default", str(tiny_model_dir), None, SamplingSettings(max_new_tokens=4, seed=1))
    try:
        feed = feeds.feed(config)
        assert _wait_for(lambda: feed.ready() == 1)
        time.sleep(0.5)
        assert feed.ready() == 1 and feed.target == 1  # nobody waits: it keeps `depth` ready, no more
        for _ in range(4):  # an annotator faster than sampling: each time the buffer is empty, aim higher
            feed.get()
            while feed.ready():
                feed.get()
        assert feed.target == 3  # capped at three times the depth
        assert _wait_for(lambda: feed.ready() == 3)
        time.sleep(0.5)
        assert feed.ready() == 3
    finally:
        feeds.stop()


def test_no_sample_in_time_is_a_wait_not_a_failure(workspace, store, tiny_model_dir):
    """The tabs show a placeholder for NothingReady (and ask again) where any other UserError is an error."""
    import pytest

    from alignstudio.services.sampling.prefetch import NothingReady

    feeds = FeedManager(GeneratorPool(ModelRegistry(workspace, store)), PromptSets(workspace), depth=1)
    config = FeedConfig("default", str(tiny_model_dir), None, SamplingSettings(max_new_tokens=4, seed=2))
    try:
        feed = feeds.feed(config)
        feed.stop()  # sampling stalls: nothing more comes
        feed.join(timeout=60)
        while feed.ready():
            feed.get()
        with pytest.raises(NothingReady, match="no sample was ready in time"):
            feed.get(timeout=0.0)
    finally:
        feeds.stop()
