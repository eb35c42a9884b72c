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
