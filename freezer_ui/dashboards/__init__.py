"""Horizon panels of freezer-ui: ``project/`` (the tenant's own) and ``admin/`` (all projects).

Every panel reaches the backend only through the request-level modules of :mod:`freezer_ui.api`
(``freezer``, ``browse``, ``stats``, ``secrets``, ``restore_sources``, ``legacy``;
docs/architecture.md section 3) and handles API errors once, at the edge of its view, with
``exceptions.handle``.

Slugs carry a ``freezer_`` prefix because Horizon's project dashboard already has ``overview``
and ``backups`` panels; slug, folder, template folder and URL namespace are the same word.

================================  =================================  ======================
URL                               URL name                                table id / workflow id
================================  =================================  ======================
/project/freezer_overview/        horizon:project:freezer_overview:index  ``recent_runs`` + charts
/project/freezer_jobs/            horizon:project:freezer_jobs:index      ``jobs`` (ajax rows)
  create/                         ...:freezer_jobs:create                 workflow ``create_job``
  <job_id>/                       ...:freezer_jobs:detail                 tabs ``job_details``
  <job_id>/update/                ...:freezer_jobs:update                 workflow ``update_job``
  <job_id>/clone/                 ...:freezer_jobs:clone                  workflow ``create_job``
  <job_id>/runs/<run_id>/         ...:freezer_jobs:run_detail             (run log)
/project/freezer_backups/         horizon:project:freezer_backups:index   ``backup_groups``
  group/<backup_id>/              ...:freezer_backups:group               ``generations``
  <backup_id>/                    ...:freezer_backups:detail              (file browser)
  <backup_id>/file/  tar/         ...:freezer_backups:file / :tar         (streamed downloads)
  <backup_id>/versions/           ...:freezer_backups:versions            ``versions``
/project/freezer_restore/         horizon:project:freezer_restore:index   ``restore_points``
  wizard/?backup_id=              ...:freezer_restore:wizard              workflow (4 steps)
  resolve/<backup_id>/            ...:freezer_restore:resolve             (JSON: point in time)
  jobs/<job_id>/  jobs/<id>/state/ ...:freezer_restore:progress / _state  (progress page, JSON)
/project/freezer_clients/         horizon:project:freezer_clients:index   ``clients``
/project/freezer_sessions/        horizon:project:freezer_sessions:index  ``sessions``
  create/ <id>/add_job/ ...       ...:freezer_sessions:create / add_job   forms
/project/freezer_secrets/         horizon:project:freezer_secrets:index   ``secrets``
/admin/freezer_jobs/              horizon:admin:freezer_jobs:index        ``admin_jobs``
/admin/freezer_backups/           horizon:admin:freezer_backups:index     ``admin_backup_groups``
/admin/freezer_overview/          horizon:admin:freezer_overview:index    ``project_totals`` + chart
/admin/freezer_clients/           horizon:admin:freezer_clients:index     ``admin_clients``
/api/freezer_ui/backups/<id>/dir|search|versions/ and /api/freezer_ui/stats/usage|projects/
================================  =================================  ======================
"""
