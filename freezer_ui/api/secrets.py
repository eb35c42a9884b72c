"""The project's secrets for the panels: ``secret_*(request, ...)`` (docs/secrets.md).

Like :mod:`freezer_ui.api.freezer`, the project and user come from ``request.user`` only, and
errors are those of :mod:`freezer_ui.api.exceptions` (``NotFound`` also for another project's
names, ``ValidationError`` naming the field).  Values go in and never come back out: there is
no function here that returns one.

The secrets always live in the dashboard's own database (``FREEZER_UI_DATABASE``), in remote
mode too: freezer-api has no place for them.  An agent on another host cannot read them and
uses key files in its key dir instead.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Any

from freezer_ui import secrets
from freezer_ui.api.exceptions import FreezerAPIError, NotFound, Unavailable, ValidationError

KINDS = secrets.KINDS
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class SecretInfo:
    """What the panels may know of a secret: everything but its value."""

    name: str
    kind: str
    description: str
    user_id: str
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @property
    def id(self) -> str:
        # Names are unique per project and URL-safe (secrets.check_name): tables and URLs
        # use them as the object id.
        return self.name

    @classmethod
    def from_row(cls, row: Any) -> SecretInfo:
        return cls(
            name=row.name,
            kind=row.kind,
            description=row.description,
            user_id=row.user_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def _store() -> secrets.SecretStore:
    if not secrets.store_available():
        from freezer_ui import conf

        raise Unavailable(
            f"The secret store needs the database {conf.database_alias()!r} "
            "(FREEZER_UI_DATABASE), which is not configured."
        )
    return secrets.SecretStore()


def _call(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a store call and translate its errors (none of which carries a value)."""
    try:
        return func(*args, **kwargs)
    except secrets.SecretInvalid as e:
        raise ValidationError({e.field: e.message}) from None
    except secrets.SecretNotFound as e:
        raise NotFound(str(e)) from None
    except secrets.SecretExists as e:
        raise ValidationError({"name": "a secret of this name already exists"}, str(e)) from None
    except secrets.SecretKeyError as e:
        # The operator's key file is missing or unsafe: nothing a tenant can fix, and its path
        # and fingerprints are the operator's business, so they go to the log only.
        LOG.error("secret store unavailable: %s", e)
        raise Unavailable(
            "The secret store's master key is not available; the operator's log says why."
        ) from None
    except secrets.SecretError as e:
        raise FreezerAPIError(f"secret store: {e}", status_code=500) from None


def _project(request: Any) -> str:
    return request.user.project_id


def secret_list(request: Any, *, kind: str | None = None) -> list[SecretInfo]:
    """The project's secrets by name (no values); ``kind="passphrase"`` for a picker."""
    if kind is not None and kind not in KINDS:
        raise ValidationError({"kind": f"must be one of {', '.join(KINDS)}"})
    rows = _call(_store().list, _project(request))
    return [SecretInfo.from_row(row) for row in rows if kind is None or row.kind == kind]


def secret_get(request: Any, name: str) -> SecretInfo:
    return SecretInfo.from_row(_call(_store().get, _project(request), name))


def secret_create(
    request: Any, name: str, value: str, kind: str = "passphrase", description: str = ""
) -> SecretInfo:
    row = _call(
        _store().create,
        _project(request),
        request.user.id,
        name,
        value,
        kind=kind,
        description=description,
    )
    return SecretInfo.from_row(row)


def secret_update(request: Any, name: str, value: str) -> SecretInfo:
    """Replace the value of ``name`` (write-only: the old value is not read)."""
    row = _call(_store().update, _project(request), name, value, user_id=request.user.id)
    return SecretInfo.from_row(row)


def secret_delete(request: Any, name: str) -> None:
    _call(_store().delete, _project(request), name)


__all__ = [
    "KINDS",
    "SecretInfo",
    "secret_create",
    "secret_delete",
    "secret_get",
    "secret_list",
    "secret_update",
]
