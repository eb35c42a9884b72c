"""Storage of the embedded transport: one table per freezer-api document kind.

Each row keeps the whole freezer-api v2 document in ``doc`` (JSON), plus copies of the fields
that queries filter or sort on (project, user, client, session, times) as indexed columns, so
that tenant filtering and paging happen in SQL whatever the backend (sqlite by default,
PostgreSQL when the ``FREEZER_UI_DATABASE`` alias points there).  ``search_text`` is the
lower-cased text of every value in the document: free-text search is then one indexed-column
``LIKE`` that works the same on every database, instead of JSON functions that do not.
"""

from django.db import models
from django.utils import timezone

_ID = 255


class Document(models.Model):
    id = models.CharField(primary_key=True, max_length=_ID)
    project_id = models.CharField(max_length=_ID, db_index=True)
    user_id = models.CharField(max_length=_ID)
    client_id = models.CharField(max_length=_ID, blank=True, default="", db_index=True)
    session_id = models.CharField(max_length=_ID, blank=True, default="", db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    doc = models.JSONField(default=dict)
    search_text = models.TextField(blank=True, default="")

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["project_id", "created_at"], name="%(class)s_project_created"),
        ]

    def __str__(self) -> str:
        return f"{self._meta.model_name} {self.id} (project {self.project_id})"


class Job(Document):
    class Meta(Document.Meta):
        pass


class Action(Document):
    class Meta(Document.Meta):
        pass


class Session(Document):
    class Meta(Document.Meta):
        pass


class Client(Document):
    # The primary key is the registration's uuid: freezer-api lets two projects register the
    # same client_id (each its own row), and a central client is visible to every project.
    is_central = models.BooleanField(default=False)

    class Meta(Document.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["project_id", "client_id"], name="freezer_ui_client_unique_per_project"
            )
        ]


class Backup(Document):
    # Restores browse generations newest first; time_stamp is the backup's own time.
    time_stamp = models.BigIntegerField(null=True, db_index=True)
    status = models.CharField(max_length=32, default="available")

    class Meta(Document.Meta):
        ordering = ["-time_stamp", "created_at", "id"]


class JobRun(Document):
    """One run of a job by an agent (embedded kind ``job_runs``; freezer-api has no such kind).

    ``doc`` holds the run document: job_id, run_id, client_id, status, result, times, per-action
    outcomes, progress and the log tail.  ``client_id`` is the agent's client.
    """

    job_id = models.CharField(max_length=_ID, db_index=True)
    status = models.CharField(max_length=32, default="running")

    class Meta(Document.Meta):
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["project_id", "job_id", "created_at"], name="jobrun_job_created"),
        ]


class Secret(models.Model):
    """A project's secret (repository passphrase, storage credential), encrypted at rest.

    ``ciphertext`` is sealed with a key that is kept outside the database (freezer_ui.secrets):
    a copy of the database alone reveals no secret.  ``name`` is what job actions reference
    (``passphrase_ref``); the value is never sent back to a browser.
    """

    id = models.CharField(primary_key=True, max_length=_ID)
    project_id = models.CharField(max_length=_ID, db_index=True)
    user_id = models.CharField(max_length=_ID)
    name = models.CharField(max_length=_ID)
    kind = models.CharField(max_length=32, default="passphrase")
    description = models.TextField(blank=True, default="")
    ciphertext = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project_id", "name"], name="freezer_ui_secret_unique_per_project"
            )
        ]

    def __str__(self) -> str:
        return f"secret {self.name} (project {self.project_id})"
