"""Pushing a snapshot to the Hugging Face Hub with `datasets`' own `push_to_hub`, the token from the environment.

The token is read from HF_TOKEN only (never typed, never stored). A failure (offline, refused, a bad repo) is one
UserError; the caller pushes before it keeps anything locally, so a failed push leaves no snapshot behind.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...core.errors import UserError

TOKEN_VARIABLE = "HF_TOKEN"


def hub_token() -> str:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise UserError(f"pushing to the Hub needs a write token in the {TOKEN_VARIABLE} environment variable")
    return token


def check_repo_id(repo: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise UserError(f"--push-to-hub: {repo!r} is not a Hub repository id (NAME or OWNER/NAME): {exc}") from None
    return repo


def push(folder: Path, repo: str, *, token: str, private: bool = True) -> str:
    """The `save_to_disk` folder's data, then its README.md card, to the dataset repository `repo`; its URL."""
    import datasets
    from huggingface_hub import HfApi, constants

    data = datasets.load_from_disk(str(folder))
    try:
        data.push_to_hub(repo, token=token, private=private, commit_message="AlignStudio snapshot")
        # push_to_hub writes a card of its own; ours (with the same configs) replaces it
        HfApi(token=token).upload_file(
            path_or_fileobj=str(Path(folder) / "README.md"),
            path_in_repo="README.md",
            repo_id=repo,
            repo_type="dataset",
            commit_message="AlignStudio dataset card",
        )
    except Exception as exc:  # offline, refused, rate-limited...: the hub raises many types; the user needs one line
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise UserError(f"could not push to the Hub repository {repo}: {type(exc).__name__}: {first}") from None
    return f"{constants.ENDPOINT}/datasets/{repo}"
