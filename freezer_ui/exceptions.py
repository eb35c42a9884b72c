"""How Horizon should treat freezer-ui's API errors (wired in through ``ADD_EXCEPTIONS``).

``RECOVERABLE`` errors become a message on the page, ``NOT_FOUND`` ones a redirect with a
message, ``UNAUTHORIZED`` ones log the user out (their token was refused).  A ``Forbidden``
answer (e.g. a member asking for all projects) is recoverable: the session itself is fine.
"""

from freezer_ui.api import exceptions as api

NOT_FOUND = (api.NotFound,)
UNAUTHORIZED = (api.Unauthorized,)
RECOVERABLE = (
    api.Forbidden,
    api.Conflict,
    api.ValidationError,
    api.Unavailable,
    api.FreezerAPIError,
)
