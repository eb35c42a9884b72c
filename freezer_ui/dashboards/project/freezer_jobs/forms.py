"""Typed job forms: each freezer-api document field is one form field, never a "key=value" string.

The form builds the job document (``job_schedule`` + one backup ``freezer_action``); the API layer
adds the project and user from the request, so no form field can name another project.  When the
API still refuses the document, its :class:`ValidationError` names document paths, which
:func:`map_api_errors` puts back on the form fields; nothing is saved in that case.
"""

from django.core import validators
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, messages

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api import schemas
from freezer_ui.dashboards import forms as dashboard_forms

backup_name_validator = validators.RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    _("Use letters, digits, dots, dashes and underscores; start with a letter or digit."),
)


# Engines that back up a path on the agent's host.  freezer-api also knows nova, glance and
# osbrick, which back up instances, images and volumes by ID: this form does not ask for those
# IDs, so offering them would only make jobs that fail at run time.
FILE_ENGINES = tuple(e for e in schemas.SUPPORTED_ENGINES if e in ("tar", "rsync", "rsyncv2"))


def _choices(values):
    return [(value, value) for value in values]


class JobForm(dashboard_forms.ScheduleForm):
    # What, where, when: the schedule fields come from the parent class and go in the middle.
    field_order = (
        "description",
        "client_id",
        "engine_name",
        "path_to_backup",
        "backup_name",
        "storage",
        "container",
        "remove_older_than",
        "schedule_kind",
        "interval_number",
        "interval_unit",
        "start_date",
        "end_date",
        "max_retries",
        "max_retries_interval",
    )

    description = forms.CharField(
        label=_("Description"),
        max_length=255,
        help_text=_("A name for the job, shown in the job list."),
    )
    client_id = forms.ChoiceField(
        label=_("Run on"),
        help_text=_("The agent (client) that runs this job; agents register themselves."),
    )
    engine_name = forms.ChoiceField(
        label=_("Engine"),
        choices=_choices(FILE_ENGINES),
        help_text=_(
            "tar for file trees; rsync for large files and images; zfs, btrfs, 3par "
            "use the storage's own snapshots."
        ),
    )
    path_to_backup = forms.CharField(
        label=_("Path to back up"),
        max_length=4096,
        help_text=_("Absolute path on the agent's host."),
    )
    backup_name = forms.CharField(
        label=_("Backup name"),
        max_length=255,
        validators=[backup_name_validator],
        help_text=_("Backups with the same name form one series of generations."),
    )
    storage = forms.ChoiceField(label=_("Storage"), choices=_choices(schemas.SUPPORTED_STORAGES))
    container = forms.CharField(
        label=_("Container"),
        max_length=4096,
        help_text=_("Directory (local, ssh) or container/bucket name (swift, s3) for the backups."),
    )
    remove_older_than = forms.IntegerField(
        label=_("Keep backups for (days)"),
        required=False,
        min_value=1,
        max_value=36500,
        help_text=_("Leave empty to keep every backup."),
    )
    max_retries = forms.IntegerField(
        label=_("Retries"),
        min_value=0,
        max_value=100,
        initial=3,
        help_text=_("How often a failed run is retried."),
    )
    max_retries_interval = forms.IntegerField(
        label=_("Seconds between retries"),
        min_value=1,
        max_value=86400,
        initial=60,
    )

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["client_id"].choices = self._client_choices(request)

    @staticmethod
    def _client_choices(request):
        try:
            clients, _more = api_freezer.client_list(request, limit=1000, offset=0)
        except Exception:
            exceptions.handle(request, _("Unable to retrieve the backup agents."))
            return [("", _("The list of agents could not be retrieved"))]
        if not clients:
            # freezer-api needs a client_id on every job: without an agent there is nothing to
            # pick, and the required field says so instead of letting a job fail later.
            return [("", _("No agent has registered in this project yet"))]
        choices = [("", _("Select an agent"))]
        choices += [(c.id, c.hostname or c.id) for c in clients]
        return choices

    def backup_action(self, data):
        """The ``freezer_action`` of the job's backup action."""
        action = {
            "action": "backup",
            "mode": "fs",
            "engine_name": data["engine_name"],
            "storage": data["storage"],
            "path_to_backup": data["path_to_backup"],
            "backup_name": data["backup_name"],
            "container": data["container"],
        }
        if data.get("remove_older_than"):
            action["remove_older_than"] = data["remove_older_than"]
        return action

    def job_action(self, data, freezer_action):
        return {
            "freezer_action": freezer_action,
            "max_retries": data["max_retries"],
            "max_retries_interval": data["max_retries_interval"],
            "mandatory": True,
        }


class CreateJobForm(JobForm):
    def handle(self, request, data):
        doc = {
            "description": data["description"],
            "job_schedule": self.schedule(data),
            "job_actions": [self.job_action(data, self.backup_action(data))],
            "client_id": data["client_id"],
        }
        try:
            job_id = api_freezer.job_create(request, doc)
        except api_exceptions.ValidationError as error:
            dashboard_forms.map_api_errors(self, error)
            return False
        except Exception:
            exceptions.handle(request, _("Unable to create the job."))
            return False
        messages.success(request, _('Created job "%s".') % data["description"])
        return job_id


class UpdateJobForm(JobForm):
    def __init__(self, request, *args, **kwargs):
        # The job as loaded by the view from the URL's ID (never from a posted field): its other
        # actions and its schedule state are kept as they are.
        self.job_doc = kwargs.pop("job_doc")
        super().__init__(request, *args, **kwargs)

    def handle(self, request, data):
        actions = [dict(a) for a in self.job_doc.get("job_actions") or []]
        new_action = self.job_action(data, self.backup_action(data))
        for index, action in enumerate(actions):
            if (action.get("freezer_action") or {}).get("action", "backup") == "backup":
                # Keep the settings this form does not show (exclude lists, ssh host, ...).
                merged = dict(action.get("freezer_action") or {})
                merged.update(new_action["freezer_action"])
                if not data.get("remove_older_than"):
                    merged.pop("remove_older_than", None)
                entry = dict(action, **dict(new_action, freezer_action=merged))
                # A job's actions are stored documents of their own (freezer-api): a changed
                # action is sent without its ID so the API stores it as a new one, instead of
                # refusing a job that disagrees with the stored action.
                for key in ("action_id", "user_id", "project_id"):
                    entry.pop(key, None)
                actions[index] = entry
                break
        else:
            actions.insert(0, new_action)
        schedule = dict(self.job_doc.get("job_schedule") or {})
        for key in ("schedule_interval", "schedule_start_date", "schedule_end_date"):
            schedule.pop(key, None)
        schedule.update(self.schedule(data))
        patch = {
            "description": data["description"],
            "job_schedule": schedule,
            "job_actions": actions,
            "client_id": data["client_id"],
        }
        try:
            api_freezer.job_update(request, self.job_doc["job_id"], patch)
        except api_exceptions.ValidationError as error:
            dashboard_forms.map_api_errors(self, error)
            return False
        except Exception:
            exceptions.handle(request, _("Unable to update the job."))
            return False
        messages.success(request, _('Updated job "%s".') % data["description"])
        return True
