"""Live sessions (issue 37): a LoRA policy trained in bursts while labels arrive (`service.LiveService`).

This module stays light (no torch): the CLI's parser takes its defaults from `LiveSettings` here.
"""

from ...training.live.folder import AGAINST_BASE, POLICY, LiveSettings

__all__ = ["AGAINST_BASE", "POLICY", "LiveSettings"]
