"""The access policy as the UI sees it (it lives in `core.access`, where training can check it too)."""

from ..core.access import ADMIN, ANNOTATOR, Caller, acting_as, caller_for, is_admin  # noqa: F401
