"""A judge refusal in two wordings: the CLI's (flags, commands) and the app's (fields, tabs).

The services raise `Refusal(cli_text, app=app_text)` where the way to fix it differs between the two doors;
`in_app_words` gives what the app shows for any UserError: the refusal's app text, else the message with each
judge flag replaced by its field's label (the labels are `JudgeConfig`'s, the same the Evaluate tab shows).
"""

from __future__ import annotations

import re

from ...core.errors import UserError

TRAIN_REWARD_IN_APP = (
    'train a reward model in the Train tab (Method "Reward model", on a snapshot exported in the Data tab)'
)
# the judge flags of `cli.judge.add_judge_args`, by JudgeConfig field
_FLAGS = {"--judge-model": "model", "--judge-base-url": "base_url", "--force-judge": "force", "--judge": "kind"}
_COMMANDS = {
    r"`?alignstudio train --method reward(?: --data SNAPSHOT)?`?": TRAIN_REWARD_IN_APP,
    r"`?alignstudio train`?": "the Train tab",
}


class Refusal(UserError):
    """A UserError whose fix reads differently in the app (`app`) than on the command line (the message)."""

    def __init__(self, message: str, *, app: str | None = None):
        super().__init__(message)
        self.app = app


def field_label(name: str) -> str:
    from ...core.settings import setting_of
    from .config import JudgeConfig

    return setting_of(JudgeConfig, name).title


def in_app_words(error: UserError) -> str:
    """The error as the app says it: fields and tabs, never flags or commands."""
    app = getattr(error, "app", None)
    if app:
        return app
    text = str(error)
    for pattern, words in _COMMANDS.items():
        text = re.sub(pattern, words, text)
    for flag, name in _FLAGS.items():  # longest flags first (dict order), so --judge-model is not read as --judge
        text = re.sub(rf"{re.escape(flag)}(?![\w-])(?: [A-Z]+\b)?", f'the "{field_label(name)}" field', text)
    return text
