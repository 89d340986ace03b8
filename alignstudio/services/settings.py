"""The settings descriptions as the UI sees them (they live in `core.settings`, where training uses them too)."""

from ..core.settings import Setting, from_values, setting_of  # noqa: F401
