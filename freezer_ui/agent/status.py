"""What the dashboard can read about runs, in either mode, through the API client.

freezer-api's job document has no field for progress (its schema refuses unknown keys), so
the agent publishes a running backup's progress on the backup record it is creating
(``status: "creating"``, ``backup_metadata.progress``), at most every ``progress_interval``
seconds.  These helpers find it for a job.
"""

from __future__ import annotations

from typing import Any

from freezer_ui.api.client import FreezerClient


def job_records(client: FreezerClient, job_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The backup records the agent wrote for ``job_id`` (any status)."""
    page = client.backups.list(limit=limit, search={"match": [{"job_id": job_id}]})
    return [b for b in page if (b.get("backup_metadata") or {}).get("job_id") == job_id]


def job_progress(client: FreezerClient, job_id: str) -> dict[str, Any] | None:
    """Live progress of the job's backup in progress: ``bytes_done``, ``bytes_total``,
    ``files_done``, ``files_total``, ``rate`` (bytes/s), ``eta`` (s), ``elapsed``, or None."""
    for record in job_records(client, job_id):
        if record.get("status") == "creating":
            progress = (record.get("backup_metadata") or {}).get("progress")
            if progress:
                return dict(progress)
    return None
