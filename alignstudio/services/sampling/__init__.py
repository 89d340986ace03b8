"""Sampling responses from SFT models, local or remote, for labeling, rounds and the arena.

- settings.py: a pair's sampling settings (A and B), importable without torch;
- sampler.py: the `Generator` (a loaded model that completes chats) and bulk sampling of pairs and singles;
- decoding.py: the lean decoding loop; generators.py: the pool of loaded models every tab shares;
- remote.py, remote_names.py: generators served by OpenAI-compatible or Anthropic servers;
- prefetch.py: the Label and Feedback tabs' buffer; prompt_sets.py; synthetic.py: system-prompt pairs.
"""
