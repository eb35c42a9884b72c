"""Route the ``freezer_ui`` app's tables to their own database alias.

The embedded store's tables live in ``settings.FREEZER_UI_DATABASE`` (default ``"freezer_ui"``),
away from Horizon's own database, and nothing else is migrated into that alias.  With
``FREEZER_UI_DATABASE = "default"`` (the tests) everything shares one database.
"""

from __future__ import annotations

from typing import Any

from freezer_ui import conf

APP_LABEL = "freezer_ui"


class FreezerUIRouter:
    def _ours(self, model: Any) -> bool:
        return model._meta.app_label == APP_LABEL

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return conf.database_alias() if self._ours(model) else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return conf.database_alias() if self._ours(model) else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        if self._ours(obj1) and self._ours(obj2):
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        alias = conf.database_alias()
        if app_label == APP_LABEL:
            return db == alias
        if db == alias and alias != "default":
            return False
        return None
