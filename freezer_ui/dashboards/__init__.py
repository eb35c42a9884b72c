"""Horizon panels of freezer-ui: ``project/`` (the tenant's own) and ``admin/`` (all projects).

Every panel reaches the backend only through :mod:`freezer_ui.api.freezer` (docs/architecture.md
section 3) and handles API errors once, at the edge of its view, with ``exceptions.handle``.

Slugs carry a ``freezer_`` prefix because Horizon's project dashboard already has ``overview``
and ``backups`` panels; slug, folder, template folder and URL namespace are the same word.

===========================  ==================================  ==============================
URL                          URL name                            table id / form id
===========================  ==================================  ==============================
/project/freezer_overview/   horizon:project:freezer_overview    (no table)
/project/freezer_jobs/       horizon:project:freezer_jobs:index  ``jobs``
  create/                    ...:freezer_jobs:create             ``create_job_form``
  <job_id>/                  ...:freezer_jobs:detail             tabs ``job_details``
  <job_id>/update/           ...:freezer_jobs:update             ``update_job_form``
/project/freezer_backups/    horizon:project:freezer_backups     ``backups``
/project/freezer_restore/    horizon:project:freezer_restore     ``restore_points``
/project/freezer_clients/    horizon:project:freezer_clients     ``clients``
/project/freezer_sessions/   horizon:project:freezer_sessions    ``sessions``
  create/                    ...:freezer_sessions:create         ``create_session_form``
/admin/freezer_jobs/         horizon:admin:freezer_jobs:index    ``admin_jobs`` (admin role)
/admin/freezer_backups/      horizon:admin:freezer_backups       ``admin_backups`` (admin role)
===========================  ==================================  ==============================
"""
