"""Errors raised by the freezer-ui API client, whatever the transport.

Views never see a transport's own exceptions (Django's, requests', python-freezerclient's): each
transport translates them into these, so ``freezer_ui/exceptions.py`` can classify them once for
Horizon's ``ADD_EXCEPTIONS``.
"""

from __future__ import annotations


class FreezerAPIError(Exception):
    """Base class: the backup service refused or failed a request."""

    status_code: int | None = None

    def __init__(self, message: str = "", *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(FreezerAPIError):
    """No such document in the caller's project (another project's IDs also land here)."""

    status_code = 404


class Forbidden(FreezerAPIError):
    """The caller's roles do not allow this (e.g. ``all_projects`` without ``admin``)."""

    status_code = 403


class Unauthorized(FreezerAPIError):
    """The caller's token was refused (expired or revoked): Horizon logs the user out."""

    status_code = 401


class Conflict(FreezerAPIError):
    """A document with this ID already exists, or it belongs to another project."""

    status_code = 409


class ValidationError(FreezerAPIError):
    """The document breaks freezer-api v2's rules.

    ``errors`` maps a document path (``job_schedule.schedule_interval``,
    ``job_actions.0.freezer_action.mode``; ``""`` for the document as a whole) to a message.
    """

    status_code = 400

    def __init__(self, errors: dict[str, str], message: str = "") -> None:
        self.errors = dict(errors)
        if not message:
            message = "; ".join(
                f"{path}: {text}" if path else text for path, text in self.errors.items()
            )
        super().__init__(message)


class Unavailable(FreezerAPIError):
    """The backup service cannot be reached (no endpoint configured, connection refused...)."""

    status_code = 503
