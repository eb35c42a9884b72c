"""The API layer: ``freezer.py`` for views, ``client.py`` + ``transports/`` beneath it.

Importing this package imports neither Django nor python-freezerclient.
"""

from freezer_ui.api.client import FreezerClient
from freezer_ui.api.exceptions import (
    Conflict,
    Forbidden,
    FreezerAPIError,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationError,
)

__all__ = [
    "Conflict",
    "Forbidden",
    "FreezerAPIError",
    "FreezerClient",
    "NotFound",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
]
