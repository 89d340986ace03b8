import pytest

from alignstudio.core.errors import UserError
from alignstudio.core.models import load_causal_lm, load_tokenizer
from alignstudio.services.sampling.sampler import Generator, sample_pair, similarity
from alignstudio.services.sampling.settings import SamplingSettings

MSG = [{"role": "user", "content": "Give me one tip for better sleep."}]


@pytest.fixture(scope="module")
def generator(tiny_model_dir):
    return Generator("tiny", load_causal_lm(tiny_model_dir), load_tokenizer(tiny_model_dir))


def test_pair_has_two_distinct_responses_and_records_settings(generator):
    pair = sample_pair(MSG, SamplingSettings(max_new_tokens=16, seed=3), generator)
    assert pair.text_a and pair.text_b and pair.text_a != pair.text_b
    assert pair.params_a["temperature"] == 0.7 and pair.params_b["temperature"] == 1.0
    assert pair.similarity <= 0.9


def test_seeded_sampling_is_reproducible(generator):
    settings = SamplingSettings(max_new_tokens=16, seed=11)
    first, second = sample_pair(MSG, settings, generator), sample_pair(MSG, settings, generator)
    assert (first.text_a, first.text_b) == (second.text_a, second.text_b)


def test_batched_rows_match_separate_calls(generator):
    """Per-row temperatures in one batch give the same tokens as one call per temperature (greedy-equal
    logits with a fixed seed are not comparable across batch shapes, so compare at near-zero temperature)."""
    both = generator.complete([MSG, MSG], [0.05, 0.05], top_p=1.0, max_new_tokens=8, seed=0)
    alone = generator.complete([MSG], [0.05], top_p=1.0, max_new_tokens=8, seed=0)
    assert both[0] == both[1] == alone[0]


def test_near_identical_pairs_are_never_returned(generator):
    # at a tiny temperature both rows decode the same text: every attempt is near-identical
    settings = SamplingSettings(temperature_a=0.05, temperature_b=0.05, max_new_tokens=8, seed=0, max_attempts=2)
    assert sample_pair(MSG, settings, generator) is None


def test_similarity_filter_threshold():
    assert similarity("the cat sat", "the cat sat") == 1.0
    assert similarity("abc", "xyz") == 0.0
    assert 0.8 < similarity("Paris is the capital.", "Paris is the capital!") < 1.0


@pytest.mark.parametrize(
    "bad",
    [{"temperature_a": 0}, {"top_p": 0}, {"max_new_tokens": 0}, {"similarity_threshold": 1.5}, {"max_attempts": 0}],
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(UserError):
        SamplingSettings(**bad)
