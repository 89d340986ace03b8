"""Labeling guidelines: admins write them (markdown, per campaign), everyone who labels reads them.

A campaign is a prompt set, "queue" for the labeling queue, or "" for every campaign without its own guidelines.
Saving makes a new version (a short hash of the text); the old ones stay, and each label keeps the version its
item was shown with (`version_for`, called when an item is handed out). The rule "only admins set guidelines"
lives here, so the app, its HTTP API and the CLI meet it alike.
"""

from __future__ import annotations

from ...core import access
from ...core.errors import UserError
from ...core.guidelines import DEFAULT_CAMPAIGN, GuidelinesStore, GuidelinesVersion
from ...core.store_file import StoreFile
from ..limits import NAME_CHARS, check_length

GUIDELINES_CHARS = 50_000  # a few pages of markdown
QUEUE_CAMPAIGN = "queue"

__all__ = ["DEFAULT_CAMPAIGN", "GUIDELINES_CHARS", "QUEUE_CAMPAIGN", "GuidelinesService", "GuidelinesVersion"]


def campaign_of(prompt_set: str, queued: bool = False) -> str:
    """The campaign an item handed out belongs to: the queue's, or its prompt set's."""
    return QUEUE_CAMPAIGN if queued else (prompt_set or DEFAULT_CAMPAIGN)


class GuidelinesService:
    def __init__(self, store: StoreFile):
        self.guidelines = GuidelinesStore(store)

    def set(self, text: str, campaign: str = DEFAULT_CAMPAIGN, *, author: str = "") -> GuidelinesVersion:
        """Save `text` as the campaign's current guidelines (admins only); labels already given keep theirs."""
        access.require_admin("setting the labeling guidelines")
        campaign = check_length((campaign or "").strip(), "the campaign", NAME_CHARS)
        text = check_length((text or "").strip(), "the guidelines", GUIDELINES_CHARS)
        if not text:
            raise UserError("the guidelines are empty: write them first")
        caller = access.current()
        return self.guidelines.save(campaign, text + "\n", (caller.name if caller and caller.name else author).strip())

    def current(self, campaign: str = DEFAULT_CAMPAIGN) -> GuidelinesVersion | None:
        """The guidelines a label in `campaign` is given under now (its own, else the default), or None."""
        return self.guidelines.current((campaign or "").strip())

    def own(self, campaign: str) -> GuidelinesVersion | None:
        """The campaign's own current guidelines (not the default ones it falls back to), or None."""
        return self.guidelines.own((campaign or "").strip())

    def version_for(self, prompt_set: str, queued: bool = False) -> str:
        """The version to record with an item of this prompt set (or the queue) handed out now; "" for none."""
        found = self.current(campaign_of(prompt_set, queued))
        return found.version if found else ""

    def version(self, version: str) -> GuidelinesVersion | None:
        """One version by its hash, or None."""
        return self.guidelines.version((version or "").strip())

    def history(self, campaign: str | None = None) -> list[GuidelinesVersion]:
        """Every saved version, newest first (of one campaign, or of all)."""
        return self.guidelines.history(campaign.strip() if campaign is not None else None)

    def first_read(self, annotator: str, version: str) -> bool:
        """True the first time `annotator` is shown `version` (it is shown open then, collapsed afterwards). A
        nameless annotator cannot be remembered: True for them."""
        annotator = (annotator or "").strip()
        if not version:
            return False
        if not annotator:
            return True
        return self.guidelines.mark_read(check_length(annotator, "the annotator name", NAME_CHARS), version)


def with_versions(rows: list[dict]) -> list[dict]:
    """DPO rows with their `guidelines` column (the version the deciding label was given under, None for none)
    when any row has one; without the column otherwise, so data labeled without guidelines keeps its columns and
    fingerprint."""
    if any(row.get("guidelines") for row in rows):
        return rows
    return [{k: v for k, v in row.items() if k != "guidelines"} for row in rows]
