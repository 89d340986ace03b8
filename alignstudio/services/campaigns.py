"""Overlap per labeling campaign: several annotators per pair, their progress, and the rule of who sets it.

A campaign is a prompt set (pairs sampled live in the Label tab) or the filled labeling queue (`QUEUE`). Its
overlap N (1 by default) is how many distinct annotators each pair gets (`core.campaigns` hands the pairs out).

For a prompt set with N above 1, a pair someone labeled and that still needs annotators is handed to the next
annotator who has not labeled it before a new pair is sampled: a campaign finishes its pairs before it grows.
Pairs labeled before the overlap was raised count from then on only (their labels were not claims).

Others' verdicts stay hidden: the Label tab shows a person only their own last verdict, the Data tab shows an
annotator only their own labels (`access.visible_annotator`), and the per-annotator quality view an annotator's
own agreement figure only. Only admins change a campaign's settings; everyone may read its progress.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import access
from ..core.campaigns import QUEUE, SPLITS, CampaignCounts, Campaigns, CampaignSettings
from ..core.errors import UserError
from .limits import NAME_CHARS, check_length

__all__ = ["QUEUE", "SPLITS", "CampaignProgress", "CampaignService", "CampaignSettings"]


@dataclass(frozen=True)
class CampaignProgress:
    """A campaign's pairs: complete (labeled by `overlap` annotators), in progress, pending; and its settings."""

    campaign: str
    overlap: int
    split: str
    complete: int
    in_progress: int
    pending: int

    def line(self) -> str:
        """ "2 annotators per pair: 3 pairs complete · 1 in progress · 4 pending" (the Label tab and the CLI)."""
        return (
            f"{self.overlap} annotator{'s' * (self.overlap != 1)} per pair: {self.complete} pair"
            f"{'s' * (self.complete != 1)} complete · {self.in_progress} in progress · {self.pending} pending"
        )


class CampaignService:
    def __init__(self, campaigns: Campaigns, prompt_sets=None):
        self.campaigns = campaigns
        self.prompt_sets = prompt_sets  # `PromptSets`: a campaign's name must be one of them, or the queue

    def settings(self, campaign: str) -> CampaignSettings:
        return self.campaigns.settings(_name(campaign))

    def configure(self, campaign: str, overlap, split: str = "drop") -> CampaignSettings:
        """Set a campaign's annotators per pair and what its consensus does with a disagreement (admins only)."""
        access.require_admin("setting annotators per pair")
        name = _name(campaign)
        if name != QUEUE and self.prompt_sets is not None and name not in self.prompt_sets.names():
            raise UserError(f"Campaign: no prompt set named {name!r}; name a prompt set, or {QUEUE} for the queue")
        return self.campaigns.configure(name, overlap, split)

    def progress(self, campaign: str) -> CampaignProgress:
        name = _name(campaign)
        counts: CampaignCounts = self.campaigns.counts(name)
        split = self.campaigns.settings(name).split
        return CampaignProgress(name, counts.overlap, split, counts.complete, counts.in_progress, counts.pending)

    def note(self, prompt_set: str = "", queued: bool = False) -> str:
        """ " · " and the progress line of the queue (`queued`) or a prompt set, for the end of the Label tab's
        status; "" with one annotator per pair."""
        name = QUEUE if queued else prompt_set
        if not name or self.campaigns.settings(name).overlap <= 1:
            return ""
        return " · " + self.progress(name).line()

    def every_progress(self) -> list[CampaignProgress]:
        """The progress of the queue and of every campaign with settings of its own."""
        names = dict.fromkeys([QUEUE, *self.campaigns.all_settings()])
        return [self.progress(name) for name in names]

    def pending_pair(self, annotator: str, prompt_set: str) -> str | None:
        """A pair of this prompt set that others labeled and that still needs annotators, claimed for this one;
        None when the set has overlap 1 or nothing waits for them (a new pair is sampled)."""
        if not annotator.strip() or not prompt_set:
            return None
        return self.campaigns.claim_pending(annotator, prompt_set)

    def hand_out(self, pair_id: str, annotator: str, prompt_set: str) -> bool:
        """Claim a freshly sampled pair for its annotator when its campaign has overlap above 1 (then its label
        finishes the claim, and others are handed the pair); whether it was claimed."""
        if not annotator.strip() or not prompt_set or self.campaigns.settings(prompt_set).overlap <= 1:
            return False
        self.campaigns.hand_out(pair_id, annotator, prompt_set)
        return True


def _name(campaign: str) -> str:
    name = (campaign or "").strip()
    if not name:
        raise UserError("name the campaign: a prompt set, or queue for the labeling queue")
    check_length(name, "the campaign", NAME_CHARS)
    return name
