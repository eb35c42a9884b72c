"""The jobs wizard: Client → Engine → Storage → Schedule → Retention, one freezer-api job document.

Each step is a Horizon workflow action (a form).  The steps after the first depend on the chosen
client: freezer-api refuses a job whose actions use an action, mode, storage or engine the job's
client did not register (``supported_*`` of the client document), so the wizard offers only what
that client lists and checks it again on the server (a posted engine the client lacks is a field
error, whatever the browser sent).  In the browser, ``static/freezer_ui/js/jobs.js`` narrows the
engine and storage lists as soon as a client is picked, from the ``data-engines``/``data-storages``
maps on the client select.

The document built here is validated by the API layer exactly as freezer-api does
(``freezer_ui/api/schemas.py``); when the API still refuses it, its field errors are put back on
the wizard's fields and nothing is saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django import forms as django_forms
from django.core import validators
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, workflows

from freezer_ui import conf
from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api import schemas
from freezer_ui.api import secrets as api_secrets
from freezer_ui.dashboards import forms as dashboard_forms

INDEX_URL = "horizon:project:freezer_jobs:index"

backup_name_validator = validators.RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    _("Use letters, digits, dots, dashes and underscores; start with a letter or digit."),
)


@dataclass(frozen=True)
class EngineSpec:
    """What the wizard asks for one engine, and the ``mode`` its backup action runs in."""

    label: str
    mode: str
    fields: tuple[str, ...]
    required: tuple[str, ...]


# Engines the wizard can configure, in the order it offers them; each is offered only when the
# chosen client lists it in ``supported_engines``.  tar is ours (file trees, files cache); the
# others are names of freezer-api's enum that upstream Freezer agents run.  freezer-api's
# ``glance`` engine is left out: which image option it reads is not settled here, and a job that
# only fails at run time is worse than no offer.  Our zfs/btrfs/3par engines are not in that enum,
# so no client can register them with freezer-api (docs/jobs.md).
ENGINES: dict[str, EngineSpec] = {
    "tar": EngineSpec(
        _("tar: file trees, unchanged files cost one stat"),
        "fs",
        ("path_to_backup", "exclude", "one_file_system"),
        ("path_to_backup",),
    ),
    "rsync": EngineSpec(
        _("rsync: large files and images, changed blocks only"),
        "fs",
        ("path_to_backup",),
        ("path_to_backup",),
    ),
    "rsyncv2": EngineSpec(
        _("rsyncv2: rsync, second format of upstream Freezer"),
        "fs",
        ("path_to_backup",),
        ("path_to_backup",),
    ),
    "nova": EngineSpec(
        _("nova: a server instance (upstream Freezer agents)"),
        "nova",
        ("nova_inst_id",),
        ("nova_inst_id",),
    ),
    "osbrick": EngineSpec(
        _("osbrick: a Cinder volume through os-brick (upstream Freezer agents)"),
        "fs",
        ("cinderbrick_vol_id",),
        ("cinderbrick_vol_id",),
    ),
}
# Every per-engine field; a field of another engine than the chosen one is dropped.
ENGINE_FIELDS = ("path_to_backup", "exclude", "one_file_system", "nova_inst_id",
                 "cinderbrick_vol_id")  # fmt: skip

# freezer-api's storages that the document may name; the client narrows them further.
STORAGES = tuple(schemas.SUPPORTED_STORAGES)
RETENTION_FIELDS = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly", "remove_older_than")

# A retention (admin) action of ours holds at least one of these keys.
RETENTION_KEYS = RETENTION_FIELDS


def _engine_attrs(field):
    """Horizon "switched" attributes: show ``field`` only for the engines that use it."""
    attrs = {"class": "switched", "data-switch-on": "engine"}
    for name, spec in ENGINES.items():
        if field in spec.fields:
            attrs[f"data-engine-{name}"] = ""
    return attrs


PICK_ONE = dashboard_forms.PICK_ONE


# ----------------------------------------------------------------------------- clients
def project_clients(request):
    """The project's registered clients by ID, fetched once per request (every step needs them).

    ``None`` when the list could not be read: the client step reports that; the other steps
    then offer nothing rather than guess.
    """
    if not hasattr(request, "_freezer_ui_clients"):
        try:
            clients, _more = api_freezer.client_list(request, limit=1000, offset=0)
        except Exception:
            exceptions.handle(request, _("Unable to retrieve the backup agents."))
            request._freezer_ui_clients = None
        else:
            request._freezer_ui_clients = {c.id: c for c in clients}
    return request._freezer_ui_clients


def _supported(client, capability, fallback):
    # freezer-api checks against its whole enum when a client registered no list at all.
    listed = (client.to_dict().get("client") or {}).get(f"supported_{capability}s")
    return list(fallback) if listed is None else list(listed)


def client_engines(client):
    supported = _supported(client, "engine", schemas.SUPPORTED_ENGINES)
    return [name for name in ENGINES if name in supported]


def client_storages(client):
    supported = _supported(client, "storage", schemas.SUPPORTED_STORAGES)
    return [name for name in STORAGES if name in supported]


def client_runs_admin(client):
    return "admin" in _supported(client, "action", schemas.SUPPORTED_ACTIONS)


def _chosen_client(request, context):
    clients = project_clients(request) or {}
    return clients.get(context.get("client_id") or "")


def warn_if_gone(action, field, context):
    """Say so when a job's stored value is no longer among the choices.

    An edited or cloned job may name an engine or storage its agent no longer lists, or a key
    that was deleted; the select would silently show another value.  The help text says which
    value is gone, so saving is a choice the user makes knowingly.
    """
    value = context.get(field)
    offered = [str(choice) for choice, _label in action.fields[field].choices]
    if value and str(value) not in offered:
        # Horizon writes help texts into a title attribute without escaping them, and the
        # value comes from a stored document (any freezer-api client may have written it).
        action.fields[field].help_text = escape(
            _('This job used "%(value)s", which is not available any more: pick another value.')
            % {"value": value}
        )


def _offered(request, context, per_client):
    """Names ``per_client`` gives for the chosen client; before a choice, any client's."""
    client = _chosen_client(request, context)
    if client is not None:
        return per_client(client)
    names = []
    for other in (project_clients(request) or {}).values():
        names += [n for n in per_client(other) if n not in names]
    return names


# ----------------------------------------------------------------------------- steps
class ClientAction(workflows.Action):
    description = forms.CharField(
        label=_("Description"),
        max_length=255,
        help_text=_("A name for the job, shown in the job list."),
    )
    client_id = forms.ChoiceField(
        error_messages=PICK_ONE,
        label=_("Run on"),
        help_text=_("The agent (client) that runs this job; agents register themselves."),
    )

    class Meta:
        name = _("Client")
        slug = "client"
        help_text = _(
            "The agent that runs the job. What the next steps offer (engines, storages, "
            "retention) is what this agent registered as supported."
        )

    def __init__(self, request, context, *args, **kwargs):
        super().__init__(request, context, *args, **kwargs)
        clients = project_clients(request)
        field = self.fields["client_id"]
        if clients is None:
            field.choices = [("", _("The list of agents could not be retrieved"))]
        elif not clients:
            # freezer-api needs a client_id on every job: without an agent there is nothing to
            # pick, and the required field says so instead of letting a job fail later.
            field.choices = [("", _("No agent has registered in this project yet"))]
        else:
            field.choices = [("", _("Select an agent"))] + [
                (c.id, c.hostname or c.id) for c in clients.values()
            ]
        # What each agent supports, for jobs.js; json.dumps output is attribute-escaped by
        # the widget like any attribute value.
        field.widget.attrs["data-engines"] = json.dumps(
            {cid: client_engines(c) for cid, c in (clients or {}).items()}
        )
        field.widget.attrs["data-storages"] = json.dumps(
            {cid: client_storages(c) for cid, c in (clients or {}).items()}
        )


class ClientStep(workflows.Step):
    action_class = ClientAction
    contributes = ("description", "client_id")


class EngineAction(workflows.Action):
    engine_name = forms.ChoiceField(
        error_messages=PICK_ONE,
        label=_("Engine"),
        widget=forms.ThemableSelectWidget(attrs={"class": "switchable", "data-slug": "engine"}),
        help_text=_("Only the engines the chosen agent supports are offered."),
    )
    backup_name = forms.CharField(
        label=_("Backup name"),
        max_length=255,
        validators=[backup_name_validator],
        help_text=_("Backups with the same name form one series of generations."),
    )
    path_to_backup = forms.CharField(
        label=_("Path to back up"),
        max_length=4096,
        required=False,
        widget=forms.TextInput(attrs=_engine_attrs("path_to_backup")),
        help_text=_("Absolute path on the agent's host, inside its allowed roots."),
    )
    exclude = forms.CharField(
        label=_("Exclude"),
        required=False,
        max_length=8192,
        widget=forms.Textarea(attrs=dict(_engine_attrs("exclude"), rows=3)),
        help_text=_("Glob patterns, one a line (e.g. *.tmp); matching files are not backed up."),
    )
    one_file_system = forms.BooleanField(
        label=_("Stay on one file system"),
        required=False,
        widget=forms.CheckboxInput(attrs=_engine_attrs("one_file_system")),
        help_text=_("Do not descend into other file systems mounted below the path."),
    )
    nova_inst_id = forms.CharField(
        label=_("Server (instance) ID"),
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs=_engine_attrs("nova_inst_id")),
    )
    cinderbrick_vol_id = forms.CharField(
        label=_("Volume ID"),
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs=_engine_attrs("cinderbrick_vol_id")),
    )

    class Meta:
        name = _("Engine")
        slug = "engine"
        help_text = _(
            "tar backs up file trees: every run is a full generation, yet unchanged files cost "
            "one stat and no data. The fields below depend on the engine."
        )

    def __init__(self, request, context, *args, **kwargs):
        super().__init__(request, context, *args, **kwargs)
        names = _offered(request, context, client_engines)
        # The ChoiceField refuses any other posted value: the server-side half of the picker.
        self.fields["engine_name"].choices = [(n, ENGINES[n].label) for n in names] or [
            ("", _("The chosen agent supports no engine this wizard can configure"))
        ]
        warn_if_gone(self, "engine_name", context)

    def clean(self):
        data = super().clean()
        spec = ENGINES.get(data.get("engine_name") or "")
        if spec is None:
            return data
        for field in spec.required:
            if not data.get(field):
                self.add_error(field, _("The %(engine)s engine needs this.")
                               % {"engine": data["engine_name"]})  # fmt: skip
        path = data.get("path_to_backup")
        if "path_to_backup" in spec.fields and path and not conf.path_allowed(path):
            self.add_error(
                "path_to_backup",
                _("Use an absolute path inside %(roots)s.")
                % {"roots": ", ".join(conf.allowed_roots())},
            )
        patterns = [p.strip() for p in (data.get("exclude") or "").splitlines() if p.strip()]
        data["exclude"] = patterns
        # Fields of other engines stay out of the document, whatever the hidden inputs held.
        for field in ENGINE_FIELDS:
            if field not in spec.fields:
                data[field] = [] if field == "exclude" else None
        return data


class EngineStep(workflows.Step):
    action_class = EngineAction
    depends_on = ("client_id",)
    contributes = ("engine_name", "backup_name", *ENGINE_FIELDS)


class StorageAction(workflows.Action):
    storage = forms.ChoiceField(label=_("Storage"), error_messages=PICK_ONE)
    container = forms.CharField(
        label=_("Repository location"),
        max_length=4096,
        help_text=_(
            "local: a directory on the agent's host, inside its allowed roots. ssh, swift, s3: "
            "the directory, container or bucket name."
        ),
    )
    passphrase_ref = forms.ChoiceField(
        error_messages=PICK_ONE,
        label=_("Repository passphrase"),
        required=False,
        help_text=_(
            "A key of this project (Keys panel). The job names the key; the passphrase itself "
            "never appears in the job."
        ),
    )

    class Meta:
        name = _("Storage")
        slug = "storage"
        help_text = _(
            "Where the repository lives. A repository is created on the first run, encrypted "
            "when a passphrase is chosen; later runs must use the same passphrase."
        )

    def __init__(self, request, context, *args, **kwargs):
        super().__init__(request, context, *args, **kwargs)
        names = _offered(request, context, client_storages)
        self.fields["storage"].choices = [(n, n) for n in names] or [
            ("", _("The chosen agent supports no storage"))
        ]
        self.fields["passphrase_ref"].choices = passphrase_choices(request)
        warn_if_gone(self, "storage", context)
        warn_if_gone(self, "passphrase_ref", context)

    def clean(self):
        data = super().clean()
        container = (data.get("container") or "").strip()
        data["container"] = container
        if data.get("storage") == "local" and container and "://" not in container:
            if not conf.path_allowed(container):
                self.add_error(
                    "container",
                    _("Use an absolute path inside %(roots)s.")
                    % {"roots": ", ".join(conf.allowed_roots())},
                )
        return data


def passphrase_choices(request):
    """``(name, label)`` of the project's passphrase keys, after "none"."""
    choices = [("", _("None: the repository is not encrypted"))]
    try:
        secrets = api_secrets.secret_list(request)
    except Exception:
        exceptions.handle(request, _("Unable to retrieve the project's keys."))
        return choices
    choices += [(s.name, s.name) for s in secrets if s.kind == "passphrase"]
    return choices


class StorageStep(workflows.Step):
    action_class = StorageAction
    depends_on = ("client_id",)
    contributes = ("storage", "container", "passphrase_ref")


class ScheduleAction(workflows.Action, dashboard_forms.ScheduleFields):
    max_retries = forms.IntegerField(
        label=_("Retries"),
        min_value=0,
        max_value=100,
        initial=3,
        help_text=_("How often a failed run is retried."),
    )
    max_retries_interval = forms.IntegerField(
        label=_("Seconds between retries"), min_value=1, max_value=86400, initial=60
    )

    class Meta:
        name = _("Schedule")
        slug = "schedule"
        help_text = _(
            "Run once when you start the job, repeat at a fixed interval, or run continuously. "
            "Dates are in your time zone (Settings); they are stored in UTC. A session the job "
            "joins later replaces this schedule with its own."
        )


SCHEDULE_FIELDS = ("schedule_kind", "interval_number", "interval_unit", "start_date", "end_date")


class ScheduleStep(workflows.Step):
    action_class = ScheduleAction
    contributes = (*SCHEDULE_FIELDS, "max_retries", "max_retries_interval")


def _keep(label, help_text):
    return forms.IntegerField(
        label=label, required=False, min_value=1, max_value=100000, help_text=help_text
    )


class RetentionAction(workflows.Action):
    keep_last = _keep(_("Keep the last"), _("Number of most recent generations kept."))
    keep_daily = _keep(_("Keep daily"), _("Days for which the day's last generation is kept."))
    keep_weekly = _keep(_("Keep weekly"), _("Weeks for which the week's last one is kept."))
    keep_monthly = _keep(_("Keep monthly"), _("Months for which the month's last one is kept."))
    remove_older_than = forms.IntegerField(
        label=_("Remove older than (days)"),
        required=False,
        min_value=1,
        max_value=36500,
    )

    class Meta:
        name = _("Retention")
        slug = "retention"
        help_text = _(
            "Leave every field empty to keep every generation. Otherwise, after each backup the "
            "job forgets the generations of this backup name that no rule keeps and frees "
            "their data. A generation kept by any rule stays."
        )

    def __init__(self, request, context, *args, **kwargs):
        super().__init__(request, context, *args, **kwargs)
        self.client = _chosen_client(request, context)

    def clean(self):
        data = super().clean()
        wanted = any(data.get(f) for f in RETENTION_FIELDS)
        if wanted and self.client is not None and not client_runs_admin(self.client):
            self.add_error(
                None,
                _("The chosen agent does not run admin actions, so it cannot apply retention."),
            )
        return data


class RetentionStep(workflows.Step):
    action_class = RetentionAction
    depends_on = ("client_id",)
    contributes = RETENTION_FIELDS


# ----------------------------------------------------------------------------- the document
def backup_action(context):
    """The ``freezer_action`` of the job's backup action."""
    engine = context["engine_name"]
    action = {
        "action": "backup",
        "mode": ENGINES[engine].mode,
        "engine_name": engine,
        "storage": context["storage"],
        "container": context["container"],
        "backup_name": context["backup_name"],
    }
    for field in ENGINES[engine].fields:
        value = context.get(field)
        if field == "exclude":
            # One pattern stays a string, as upstream Freezer agents read it; several are a
            # list, which our agent reads.
            if value:
                action["exclude"] = value[0] if len(value) == 1 else list(value)
        elif field == "one_file_system":
            if value:
                action["one_file_system"] = True
        elif value:
            action[field] = value
    if context.get("passphrase_ref"):
        action["passphrase_ref"] = context["passphrase_ref"]
    return action


def retention_action(context):
    """The ``admin`` action that applies the retention rules, or None when there are none."""
    rules = {f: context[f] for f in RETENTION_FIELDS if context.get(f)}
    if not rules:
        return None
    action = {
        "action": "admin",
        "mode": "fs",
        "storage": context["storage"],
        "container": context["container"],
        "backup_name": context["backup_name"],
        **rules,
    }
    if context.get("passphrase_ref"):
        action["passphrase_ref"] = context["passphrase_ref"]
    return action


def job_action(context, freezer_action):
    return {
        "freezer_action": freezer_action,
        "max_retries": context["max_retries"],
        "max_retries_interval": context["max_retries_interval"],
        "mandatory": True,
    }


def schedule_doc(context):
    return dashboard_forms.schedule_document(context)


def is_retention(entry):
    action = (entry or {}).get("freezer_action") or {}
    return action.get("action") == "admin" and any(k in action for k in RETENTION_KEYS)


def is_backup(entry):
    return ((entry or {}).get("freezer_action") or {}).get("action", "backup") == "backup"


class JobWorkflow(workflows.Workflow):
    """Shared by create, clone and edit: the steps and the mapping of API errors."""

    default_steps = (ClientStep, EngineStep, StorageStep, ScheduleStep, RetentionStep)
    success_url = INDEX_URL
    wizard = True

    def api_refused(self, error):
        """Put the API's field errors on the steps' fields, then show the wizard again."""
        for field, message in dashboard_forms.api_error_targets(error):
            step = next((s for s in self.steps if field and field in s.action.fields), None)
            if step is None:
                step = self.steps[0]
                field = None
            step.action.add_error(field, message)
            step.has_errors = True
        # WorkflowView renders the workflow again (with these errors) on a ValidationError.
        raise django_forms.ValidationError("refused by the API")

    def api_failed(self, request, message):
        """The API could not be reached or failed: say so and keep what the user typed."""
        exceptions.handle(request, message)
        self.steps[0].action.add_error(None, message)
        self.steps[0].has_errors = True
        raise django_forms.ValidationError(str(message))


class CreateJob(JobWorkflow):
    slug = "create_job"
    name = _("Create Backup Job")
    finalize_button_name = _("Create Job")
    success_message = _('Created job "%s".')
    failure_message = _('Unable to create job "%s".')

    def format_status_message(self, message):
        return message % self.context.get("description", "")

    def job_doc(self, context):
        actions = [job_action(context, backup_action(context))]
        retention = retention_action(context)
        if retention:
            actions.append(job_action(context, retention))
        return {
            "description": context["description"],
            "client_id": context["client_id"],
            "job_schedule": schedule_doc(context),
            "job_actions": actions,
        }

    def handle(self, request, context):
        try:
            self.object = api_freezer.job_create(request, self.job_doc(context))
        except api_exceptions.ValidationError as error:
            self.api_refused(error)
        except Exception:
            self.api_failed(request, _("Unable to create the job."))
        return True


class UpdateJob(JobWorkflow):
    slug = "update_job"
    name = _("Edit Backup Job")
    finalize_button_name = _("Save Changes")
    success_message = _('Updated job "%s".')
    failure_message = _('Unable to update job "%s".')
    # Set by the view from the job named in the URL (never from a posted field).
    job_doc = None

    def format_status_message(self, message):
        return message % self.context.get("description", "")

    def patch(self, context):
        """The job patch: the form's actions replace theirs; everything else is kept."""
        actions = [dict(a) for a in self.job_doc.get("job_actions") or []]
        new_backup = job_action(context, backup_action(context))
        index = next((i for i, a in enumerate(actions) if is_backup(a)), None)
        if index is None:
            actions.insert(0, new_backup)
        else:
            merged = dict(actions[index].get("freezer_action") or {})
            # Settings of another engine (or a removed passphrase/retention) do not linger.
            for key in (*ENGINE_FIELDS, "passphrase_ref", "remove_older_than", "mode"):
                merged.pop(key, None)
            merged.update(new_backup["freezer_action"])
            actions[index] = _changed(actions[index], new_backup, merged)
        retention = retention_action(context)
        index = next((i for i, a in enumerate(actions) if is_retention(a)), None)
        if retention and index is None:
            actions.append(job_action(context, retention))
        elif retention:
            merged = dict(actions[index].get("freezer_action") or {})
            for key in (*RETENTION_KEYS, "passphrase_ref"):
                merged.pop(key, None)
            merged.update(retention)
            actions[index] = _changed(actions[index], job_action(context, retention), merged)
        elif index is not None:
            del actions[index]
        schedule = dict(self.job_doc.get("job_schedule") or {})
        for key in ("schedule_interval", "schedule_start_date", "schedule_end_date"):
            schedule.pop(key, None)
        schedule.update(schedule_doc(context))
        return {
            "description": context["description"],
            "client_id": context["client_id"],
            "job_schedule": schedule,
            "job_actions": actions,
        }

    def handle(self, request, context):
        try:
            api_freezer.job_update(request, self.job_doc["job_id"], self.patch(context))
        except api_exceptions.ValidationError as error:
            self.api_refused(error)
        except Exception:
            self.api_failed(request, _("Unable to update the job."))
        return True


def _changed(old_entry, new_entry, freezer_action):
    entry = dict(old_entry, **dict(new_entry, freezer_action=freezer_action))
    # A job's actions are stored documents of their own (freezer-api): a changed action is
    # sent without its ID so the API stores it as a new one, instead of refusing a job that
    # disagrees with the stored action.
    for key in ("action_id", "user_id", "project_id"):
        entry.pop(key, None)
    return entry
