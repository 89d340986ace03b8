"""Live mode in the app (issue 37): a live session per campaign (a prompt set), the Label tab's feed drawn from its
newest version, the labels given there learned by it, and what the chip, the Train tab's curve and the Arena read.

`LiveCampaigns` is a part of `LiveService` (the container's `live`): which session serves which prompt set is kept
in workspace/live/campaigns.json, so every tab and a restarted app agree on it. A campaign is live while its
session's trainer runs; once it stops, fails or the app that started it is gone, the Label tab samples as before.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, replace

from ...core import access
from ...core.errors import UserError
from ...training.live.folder import AGAINST_BASE, LOADING, READY, TRAINING, LiveSettings, check_name, version_name
from ..sampling.prefetch import FeedConfig

CAMPAIGNS_FILE = "campaigns.json"
LIVE_MODEL = "live"  # the Arena's name for the newest live version
_VERSION_RE = re.compile(r"^live-(?P<session>.+)-v(?P<number>\d+)$")
RUNNING = (LOADING, READY, TRAINING)


@dataclass(frozen=True)
class CurvePoint:
    """One measured burst of a session: its held-out loss and accuracy after training, and what became of it."""

    burst: int
    outcome: str  # kept | discarded | skipped | failed
    version: int | None  # the version it became (kept), else the one the policy stayed at
    heldout_loss: float | None
    heldout_accuracy: float | None
    labels: int  # labels the burst trained on (new and replayed)
    before_loss: float | None = None  # the policy's, on the same held-out labels, before the burst
    before_accuracy: float | None = None


def session_of(model_name: str) -> tuple[str, int] | None:
    """(session, version) of a live version's registry name (`live-NAME-vN`), or None for any other model."""
    found = _VERSION_RE.match(model_name or "")
    return (found["session"], int(found["number"])) if found else None


def campaign_session_name(prompt_set: str) -> str:
    """A new session's name for a campaign: the prompt set and the time (a valid session name)."""
    return check_name(f"{prompt_set[:40]}-{time.strftime('%Y%m%d-%H%M%S')}")


class LiveCampaigns:
    """The app's side of `LiveService` (mixed into it): needs `root`, `store`, `generators`, `feeds`, `folder`,
    `start`, `stop`, `status`, `add_labels`, `bursts` and `_alive` from it."""

    _campaign_lock = threading.Lock()

    # -- which session serves which prompt set ------------------------------------------------------------------

    def _campaigns(self) -> dict[str, str]:
        try:
            return json.loads((self.root / CAMPAIGNS_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _write_campaigns(self, campaigns: dict[str, str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / CAMPAIGNS_FILE
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        partial.write_text(json.dumps(campaigns))
        os.replace(partial, path)

    def running(self, name: str) -> bool:
        """Whether a session's trainer is up (loading, ready or training) now."""
        folder = self.folder(name)
        return folder.state().get("state") in RUNNING and self._alive(folder)

    def campaign_session(self, prompt_set: str) -> str | None:
        """The live session serving this prompt set now, or None (none started, or its trainer is not running)."""
        name = self._campaigns().get(prompt_set)
        if not name or not (self.root / name / "session.json").exists():
            return None
        return name if self.running(name) else None

    def start_campaign(self, prompt_set: str, model: str, *, pairs: str, every: int) -> str:
        """A new live session for the campaign, from `model` (admin); the Label tab's pairs come from it once its
        trainer is ready. Its name."""
        access.require_admin("live sessions")
        if not prompt_set:
            raise UserError("Prompt set: choose the campaign's prompt set first")
        running = self.campaign_session(prompt_set)
        if running:
            raise UserError(f"prompt set {prompt_set} is live already (session {running}): stop it first")
        if session_of(model):
            raise UserError(f"Model A: {model} is a live version; start from a base or trained model")
        try:
            every = int(every)
        except (TypeError, ValueError):
            raise UserError(f"Burst every (labels): a whole number, not {every!r}") from None
        settings = LiveSettings(model=model, every=every, pairs=pairs)
        try:
            settings.check()
        except UserError as exc:
            raise UserError(f"Live mode: {exc}") from None
        name = campaign_session_name(prompt_set)
        self.start(name, settings)
        with self._campaign_lock:
            self._write_campaigns({**self._campaigns(), prompt_set: name})
        return name

    def stop_campaign(self, prompt_set: str) -> str:
        """Stop the campaign's live session (admin): the Label tab samples from the chosen models again."""
        access.require_admin("live sessions")
        name = self._campaigns().get(prompt_set)
        if not name or not (self.root / name / "session.json").exists():
            raise UserError(f"prompt set {prompt_set} has no live session")
        self.stop(name)
        return name

    def chip_session(self, prompt_set: str) -> str | None:
        """The session the chip shows for a prompt set: the running one, else the last one it had."""
        name = self._campaigns().get(prompt_set)
        return name if name and (self.root / name / "session.json").exists() else None

    # -- the Label tab's feed and labels ------------------------------------------------------------------------

    def label_feed(self, config: FeedConfig) -> FeedConfig:
        """The Label tab's feed: while the prompt set is live, its pairs come from the newest version (both
        answers, or one against the base: the session's `pairs` setting); else `config` as it is. When a version
        lands, the older version's ready pairs are still handed out until the new one's first pair is ready. Until
        the trainer has saved v0, the models chosen (`config`)."""
        name = self.campaign_session(config.prompt_set)
        if name is None:
            return config
        folder = self.folder(name)
        current = folder.state().get("current")
        if current is None:  # loading: no version to sample from yet
            return config
        base = folder.settings()
        newest = replace(
            config,
            model_a=version_name(name, current),
            model_b=base.model if base.pairs == AGAINST_BASE else None,
        )
        with self._serving_lock:
            serving = self._serving.get(name)
            if serving is None or serving.model_a == newest.model_a:  # the same version (settings may differ)
                self._serving[name] = newest
                return newest
            only_the_version = replace(serving, model_a=newest.model_a, model_b=newest.model_b) == newest
            if only_the_version and self.feeds.feed(newest).ready() == 0 and self.feeds.feed(serving).ready() > 0:
                return serving  # the new version's feed is warming up (it started above)
            self._serving[name] = newest
        self.generators.release(serving.model_a)  # the older version leaves the pool (its feed idles out)
        return newest

    def learn_label(self, event_id: str, edited_text: str | None = None):
        """A stored label (its event id), for the live session whose version sampled the pair (while it runs): a
        decisive verdict becomes a live label (the rewrite, when there is one, as the chosen answer), under the
        label's annotator. The session's status, or None when the pair is no live session's or the verdict is not
        decisive."""
        stored = self.store.label(event_id)
        if stored is None or stored.verdict not in ("A", "B") or not stored.pair_id:
            return None
        pair = self.store.pair(stored.pair_id)
        found = session_of(pair.model_a)
        if found is None or not (self.root / found[0] / "session.json").exists() or not self.running(found[0]):
            return None
        from .service import LiveLabel

        chosen, rejected = (pair.text_a, pair.text_b) if stored.verdict == "A" else (pair.text_b, pair.text_a)
        label = LiveLabel(pair.messages, edited_text or chosen, rejected, pair.id, stored.annotator)
        return self.add_labels(found[0], [label])

    # -- what the chip, the curve and the Arena read --------------------------------------------------------------

    def curve(self, name: str) -> list[CurvePoint]:
        """Every measured burst of a session, in order (a burst with no held-out labels has no point)."""
        points = []
        for row in self.bursts(name):
            after, before = row.get("after") or {}, row.get("before") or {}
            if after.get("loss") is None:
                continue
            points.append(
                CurvePoint(
                    row["burst"],
                    row["outcome"],
                    row.get("version", row.get("current")),
                    after.get("loss"),
                    after.get("accuracy"),
                    row.get("new_labels", 0) + row.get("replayed", 0),
                    before.get("loss"),
                    before.get("accuracy"),
                )
            )
        return points

    def sessions_with_versions(self) -> list[str]:
        return [name for name in self.names() if self.folder(name).version_numbers()]

    def newest_version(self) -> str | None:
        """The registry name of the newest live policy: the current version of the most recently active
        session, running ones first (the Arena's "live"); None before any live session."""
        best, key = None, None
        for name in self.sessions_with_versions():
            folder = self.folder(name)
            current = folder.state().get("current")
            if current is None or current not in folder.version_numbers():
                continue
            rank = (self.running(name), folder.card(current)["time"], name)
            if key is None or rank > key:
                best, key = version_name(name, current), rank
        return best

    def resolve_model(self, name: str) -> str:
        """`live` -> the newest live version's registry name; any other name as it is."""
        if name != LIVE_MODEL:
            return name
        newest = self.newest_version()
        if newest is None:
            raise UserError('model "live": no live session has a version yet (start one in the Label tab)')
        return newest

    def offered(self) -> list[str]:
        """["live"] once a live version exists (a model list's extra entry), else []."""
        return [LIVE_MODEL] if self.sessions_with_versions() else []
