"""Horizon panels of freezer-ui: ``project/`` (the tenant's own) and ``admin/`` (all projects).

Every panel reaches the backend only through :mod:`freezer_ui.api.freezer` (docs/architecture.md
section 3) and handles API errors once, at the edge of its view, with ``exceptions.handle``.
"""
