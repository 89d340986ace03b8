"""The service layer: the one door for ui/ and cli/.

The two policies that live in core (so that training can apply them too) are re-exported here, because ui/
and cli/ import nothing from core but its errors: the settings descriptions and the access roles.
"""

from ..core.access import ADMIN, ANNOTATOR, Caller, acting_as, caller_for, is_admin
from ..core.settings import Setting, from_values, setting_of

__all__ = [
    "ADMIN",
    "ANNOTATOR",
    "Caller",
    "Setting",
    "acting_as",
    "caller_for",
    "from_values",
    "is_admin",
    "setting_of",
]
