"""The restore wizard: which generation, what, where, then review and confirm.

The view resolves the backup named in the URL (``?backup_id=``) once, with its restore source
(:mod:`freezer_ui.api.restore_sources`) and the generations of its series, and seeds the
workflow context with them; every step validates against those, server side.  Confirming
creates a job with one restore action that runs once, at once, and the browser is sent to the
job's progress page.
"""

from __future__ import annotations

import datetime
import json
import os
import posixpath

from django import forms as django_forms
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, forms, workflows

from freezer_ui import conf
from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api import restore_sources
from freezer_ui.api import secrets as api_secrets
from freezer_ui.dashboards import forms as dashboard_forms
from freezer_ui.dashboards import utils

WHEN_CHOICES = (
    ("generation", _("A generation from the list")),
    ("point_in_time", _("The state at a point in time")),
)
SCOPE_CHOICES = (
    ("all", _("Everything in the generation")),
    ("selected", _("Only the files and folders I select")),
)
OVERWRITE_CHOICES = (
    ("never", _("Never: refuse a target that already holds files")),
    ("if-newer", _("If newer: replace files older than the backup's")),
    ("always", _("Always: replace every file of the selection")),
)
# How many paths one restore may select (each becomes part of the job document).
MAX_PATHS = 1000


def generation_label(gen):
    """One line per generation: its time in the user's zone, its kind, files and size."""
    parts = [utils.format_datetime(gen.time), str(gen.kind)]
    if gen.files is not None:
        parts.append(_("%(files)s files") % {"files": gen.files})
    if gen.size is not None:
        from django.template.defaultfilters import filesizeformat

        parts.append(filesizeformat(gen.size))
    return " · ".join(str(p) for p in parts)


def generation_json(gen):
    return {
        "id": gen.id,
        "backup_id": gen.backup_id,
        "time": gen.time.isoformat(),
        "label": str(generation_label(gen)),
        "kind": str(gen.kind),
        "level": gen.level,
    }


def normalize_path(value):
    """A path inside the generation as the engines name it (``etc/hosts``), or ValueError.

    Absolute paths, ``..`` and empty parts are refused: a selection names something in the
    backup, never a place on the host.
    """
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError(value)
    if value.startswith("/"):
        raise ValueError(value)
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(value)
    return "/".join(parts)


# ----------------------------------------------------------------------------- step 1
class SelectGenerationAction(workflows.Action):
    backup_id = forms.CharField(widget=forms.HiddenInput())
    when = forms.ChoiceField(
        label=_("Restore"),
        choices=WHEN_CHOICES,
        initial="generation",
        widget=forms.ThemableSelectWidget(attrs={"class": "switchable", "data-slug": "when"}),
    )
    # A CharField with a select: a generation deleted since the page was built gets the
    # source's own "no longer exists" message instead of Django's "invalid choice".
    generation_id = forms.CharField(
        label=_("Generation"),
        required=False,
        widget=forms.ThemableSelectWidget(
            attrs={
                "class": "switched",
                "data-switch-on": "when",
                "data-when-generation": _("Generation"),
            }
        ),
    )
    point_in_time = forms.DateTimeField(
        label=_("Point in time"),
        required=False,
        widget=dashboard_forms.DateTimeLocalInput(
            attrs={
                "class": "switched",
                "data-switch-on": "when",
                "data-when-point_in_time": _("Point in time"),
            }
        ),
        help_text=_("In your time zone; the newest generation at or before it is restored."),
    )
    # The generation the page showed for the point in time (filled by restore_wizard.js from
    # the resolve endpoint); the confirmed restore must use that one and no other.
    resolved_generation = forms.CharField(required=False, widget=forms.HiddenInput())

    class Meta:
        name = _("Backup and generation")
        slug = "generation"
        help_text_template = "freezer_ui/project/freezer_restore/_step_generation_help.html"

    def __init__(self, request, context, *args, **kwargs):
        self.restore_context = context
        super().__init__(request, context, *args, **kwargs)

    def populate_generation_id_choices(self, request, context):
        gens = context.get("generations") or []
        if not gens:
            choices = [("", _("This backup has no restorable generation"))]
        else:
            choices = [(g.id, generation_label(g)) for g in gens]
        self.fields["generation_id"].widget.choices = choices
        return choices

    def get_help_text(self, extra_context=None):
        extra = dict(extra_context or {})
        extra.update(
            backup=self.restore_context.get("backup"),
            source=self.restore_context.get("source"),
            generations=self.restore_context.get("generations") or [],
        )
        return super().get_help_text(extra)

    def clean(self):
        data = super().clean()
        source = self.restore_context.get("source")
        backup = self.restore_context.get("backup")
        if source is None or backup is None:
            raise forms.ValidationError(_("No backup to restore from."))
        try:
            if data.get("when") == "point_in_time":
                at = data.get("point_in_time")
                if at is None:
                    self.add_error("point_in_time", _("Give a date and time."))
                    return data
                gen = source.resolve(self.request, backup, at)
                shown = data.get("resolved_generation")
                if shown != gen.id:
                    self.add_error(
                        "point_in_time",
                        _(
                            "This point in time resolves to the generation of %(time)s "
                            "(%(id)s); check it and continue again."
                        )
                        % {"time": utils.format_datetime(gen.time), "id": gen.id[:12]},
                    )
                    return data
            else:
                if not data.get("generation_id"):
                    self.add_error("generation_id", _("Pick a generation."))
                    return data
                gen = source.generation(self.request, backup, data["generation_id"])
        except restore_sources.RestoreSourceError as error:
            field = {"generation": "generation_id"}.get(error.field, error.field)
            self.add_error(field if field in self.fields else None, str(error))
            return data
        data["generation"] = gen
        return data

    def handle(self, request, context):
        return {"generation": self.cleaned_data["generation"]}


class SelectGeneration(workflows.Step):
    action_class = SelectGenerationAction
    # Horizon keeps only the seed keys some step declares: backup_id is the hidden field that
    # carries the backup through every post (the step validations and the final one).
    depends_on = ("backup_id", "backup", "source", "generations")
    contributes = ("generation",)
    template_name = "freezer_ui/project/freezer_restore/_step_generation.html"

    def contribute(self, data, context):
        if data:
            context["generation"] = data.get("generation")
        return context


# ----------------------------------------------------------------------------- step 2
class SelectPathsAction(workflows.Action):
    scope = forms.ChoiceField(
        label=_("What"),
        choices=SCOPE_CHOICES,
        initial="all",
        widget=forms.ThemableSelectWidget(attrs={"class": "switchable", "data-slug": "scope"}),
    )
    # JSON list of paths relative to the generation's root, kept by the tree picker.
    paths = forms.CharField(required=False, widget=forms.HiddenInput())
    # For sources whose generations cannot be browsed: the paths typed, one per line.
    paths_text = forms.CharField(
        label=_("Paths inside the backup"),
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "class": "switched",
                "data-switch-on": "scope",
                "data-scope-selected": _("Paths inside the backup"),
                "placeholder": "etc/nginx\nvar/www/index.html",
            }
        ),
        help_text=_("One per line, relative to the backed-up directory."),
    )

    class Meta:
        name = _("What")
        slug = "paths"
        help_text = _(
            "Open folders to load their contents; tick what to restore. A ticked folder is "
            "restored with everything in it."
        )

    def __init__(self, request, context, *args, **kwargs):
        self.restore_context = context
        super().__init__(request, context, *args, **kwargs)
        source = context.get("source")
        if source is not None and not source.can_pick_paths:
            self.fields["scope"].choices = SCOPE_CHOICES[:1]
        if source is None or source.browsable or not source.can_pick_paths:
            del self.fields["paths_text"]

    def clean(self):
        data = super().clean()
        if data.get("scope") != "selected":
            data["paths"] = []
            return data
        if "paths_text" in self.fields:
            raw = [line.strip() for line in (data.get("paths_text") or "").splitlines()]
            raw = [line for line in raw if line]
        else:
            try:
                raw = json.loads(data.get("paths") or "[]")
            except ValueError:
                raw = None
        if not isinstance(raw, list):
            raise forms.ValidationError(_("The selection could not be read; select again."))
        try:
            paths = sorted({normalize_path(p) for p in raw})
        except ValueError as bad:
            raise forms.ValidationError(
                _("%(path)s is not a path inside the backup.") % {"path": bad.args[0]}
            ) from None
        if not paths:
            raise forms.ValidationError(_("Select at least one file or folder."))
        if len(paths) > MAX_PATHS:
            raise forms.ValidationError(
                _("Select at most %(max)s files and folders (select their folder instead).")
                % {"max": MAX_PATHS}
            )
        # A folder includes its contents: drop paths that a selected folder already covers.
        data["paths"] = [
            p for p in paths if not any(p.startswith(q + "/") for q in paths if q != p)
        ]
        return data

    def handle(self, request, context):
        return {"paths": self.cleaned_data["paths"]}


class SelectPaths(workflows.Step):
    action_class = SelectPathsAction
    depends_on = ("source",)
    contributes = ("paths",)
    template_name = "freezer_ui/project/freezer_restore/_step_paths.html"

    def contribute(self, data, context):
        if data:
            context["paths"] = data.get("paths") or []
        return context


def is_encrypted(gen):
    """Whether restoring ``gen`` needs a key the action must name: a source marks such
    generations (an upstream Freezer backup's record says ``encrypted``). Our own encrypted
    repositories need nothing here: their records already name their key."""
    return (getattr(gen, "extra", None) or {}).get("encrypted") is True


def may_need_key(gen):
    """Encrypted, or a source that cannot tell (``encrypted: None``: a record the upstream
    agent wrote itself carries no encryption flag): the key field is offered, not required."""
    extra = getattr(gen, "extra", None) or {}
    return "encrypted" in extra and extra["encrypted"] is not False


def key_choices(request):
    """``(name, label)`` of the project's passphrase keys (the Keys panel), after a prompt."""
    choices = [("", _("Select the key this backup was encrypted with"))]
    try:
        keys = api_secrets.secret_list(request, kind="passphrase")
    except Exception:
        exceptions.handle(request, _("Unable to retrieve the project's keys."))
        return choices
    return choices + [(k.name, k.name) for k in keys]


# ----------------------------------------------------------------------------- step 3
class SelectTargetAction(workflows.Action):
    client_id = forms.ThemableChoiceField(
        label=_("Agent"), help_text=_("The host that receives the files.")
    )
    target = forms.CharField(
        label=_("Target directory"),
        max_length=4096,
        help_text=_("An absolute path on that host; a new directory is created."),
    )
    overwrite = forms.ChoiceField(
        label=_("Existing files"),
        choices=OVERWRITE_CHOICES,
        initial="never",
        widget=forms.ThemableSelectWidget(),
    )
    # Only for series with encrypted generations (removed otherwise, see __init__).
    passphrase_ref = forms.ChoiceField(
        label=_("Encryption key"),
        required=False,
        help_text=_(
            "A passphrase key of this project (Keys panel) holding the passphrase the backup "
            "was made with (the upstream agent's --encrypt-pass-file). The job names the key; "
            "the passphrase itself never appears in the job."
        ),
    )

    class Meta:
        name = _("Where")
        slug = "target"

    def __init__(self, request, context, *args, **kwargs):
        self.restore_context = context
        super().__init__(request, context, *args, **kwargs)
        gens = context.get("generations") or []
        if any(may_need_key(g) for g in gens):
            self.fields["passphrase_ref"].choices = key_choices(request)
            if not any(is_encrypted(g) for g in gens):
                self.fields["passphrase_ref"].help_text = _(
                    "The upstream agent's record does not say whether this backup is "
                    "encrypted: if it is, pick the key holding its passphrase (Keys panel)."
                )
        else:
            del self.fields["passphrase_ref"]

    def _needs_key(self):
        # The generation picked in step 1 when it is known, else any generation of the series.
        gen = self.restore_context.get("generation")
        if gen is not None:
            return is_encrypted(gen)
        return any(is_encrypted(g) for g in self.restore_context.get("generations") or [])

    def populate_client_id_choices(self, request, context):
        try:
            clients, _more = api_freezer.client_list(request, limit=1000, offset=0)
        except Exception:
            exceptions.handle(request, _("Unable to retrieve the backup agents."))
            return [("", _("The list of agents could not be retrieved"))]
        if not clients:
            return [("", _("No agent has registered in this project yet"))]
        return [("", _("Select an agent"))] + [(c.id, c.hostname or c.id) for c in clients]

    def get_help_text(self, extra_context=None):
        roots = ", ".join(conf.allowed_roots())
        return format_html(
            "<p>{}</p><p>{}</p>",
            _("The agent creates the target directory and restores into it."),
            _("Restores may only write inside: %(roots)s") % {"roots": roots},
        )

    def clean_target(self):
        target = self.cleaned_data["target"].strip()
        roots = conf.allowed_roots()
        if not target.startswith("/"):
            raise forms.ValidationError(_("Give an absolute path (it starts with /)."))
        if not conf.path_allowed(target, roots):
            raise forms.ValidationError(
                _("%(path)s is outside the directories restores may write to (%(roots)s).")
                % {"path": target, "roots": ", ".join(roots)}
            )
        return posixpath.normpath(target)

    def clean(self):
        data = super().clean()
        target = data.get("target")
        if target and data.get("overwrite") == "never" and target_in_use(target):
            self.add_error(
                "target",
                _(
                    "%(path)s already exists and is not empty, and existing files are never "
                    "overwritten: choose a new directory or another policy for existing files."
                )
                % {"path": target},
            )
        if "passphrase_ref" in self.fields and not data.get("passphrase_ref"):
            if self._needs_key():
                self.add_error(
                    "passphrase_ref",
                    _(
                        "This backup is encrypted: pick the key holding its passphrase "
                        "(add it in the Keys panel first if it is not listed)."
                    ),
                )
        return data

    def handle(self, request, context):
        data = self.cleaned_data
        return {
            "client_id": data["client_id"],
            "target": data["target"],
            "overwrite": data["overwrite"],
            "passphrase_ref": data.get("passphrase_ref") or "",
        }


def target_in_use(path):
    """Whether ``path`` exists on this host as anything but an empty directory.

    Only meaningful where the agents run on the dashboard's host: the embedded mode, where
    agent and dashboard share the database file.  In remote mode the agent's host is another
    machine and the agent itself is the judge.
    """
    if conf.get("FREEZER_UI_API_MODE") != "embedded":
        return False
    if not os.path.lexists(path):
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        try:
            with os.scandir(path) as entries:
                return next(entries, None) is not None
        except OSError:
            return True
    return True


class SelectTarget(workflows.Step):
    action_class = SelectTargetAction
    depends_on = ("generations",)
    contributes = ("client_id", "target", "overwrite", "passphrase_ref")


# ----------------------------------------------------------------------------- step 4
class ReviewAction(workflows.Action):
    confirm = forms.BooleanField(
        label=_("I have checked the generation, the selection and the target"),
        required=True,
        widget=forms.ThemableCheckboxInput(),
    )

    class Meta:
        name = _("Review and confirm")
        slug = "review"

    def handle(self, request, context):
        return {"confirm": True}


class Review(workflows.Step):
    action_class = ReviewAction
    contributes = ("confirm",)
    template_name = "freezer_ui/project/freezer_restore/_step_review.html"


# ----------------------------------------------------------------------------- workflow
class RestoreWizard(workflows.Workflow):
    slug = "restore_wizard"
    name = _("Restore")
    finalize_button_name = _("Restore")
    success_message = _("The restore job was created; its agent starts it shortly.")
    failure_message = _("Unable to create the restore job.")
    default_steps = (SelectGeneration, SelectPaths, SelectTarget, Review)
    wizard = True

    job_id = None

    def get_success_url(self):
        if self.job_id:
            return reverse("horizon:project:freezer_restore:progress", args=[self.job_id])
        return reverse("horizon:project:freezer_restore:index")

    def job_document(self, context):
        source = context["source"]
        backup = context["backup"]
        gen = context["generation"]
        action = source.restore_action(
            self.request,
            backup,
            gen,
            context.get("paths") or [],
            context["target"],
            context["overwrite"],
        )
        if is_encrypted(gen) and not context.get("passphrase_ref"):
            raise restore_sources.RestoreSourceError(
                "passphrase_ref", str(_("This backup is encrypted: pick its key."))
            )
        if context.get("passphrase_ref") and may_need_key(gen):
            # The agent restores with exactly this key (legacy_action): never a fallback.
            action["passphrase_ref"] = context["passphrase_ref"]
        when = gen.time.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M")
        return {
            "description": f"Restore {backup.backup_name} ({when} UTC) to {context['target']}",
            "client_id": context["client_id"],
            # No schedule and a start event: one run, at once (docs/agent.md "Schedules").
            "job_schedule": {"event": "start"},
            "job_actions": [
                {
                    "freezer_action": action,
                    # A restore that failed halfway is not retried blindly: the user reads the
                    # error and decides (the target may hold part of the files).
                    "max_retries": 0,
                    "max_retries_interval": 1,
                    "mandatory": True,
                }
            ],
        }

    def handle(self, request, context):
        try:
            doc = self.job_document(context)
            self.job_id = api_freezer.job_create(request, doc)
        except (api_exceptions.ValidationError, restore_sources.RestoreSourceError) as error:
            self._step_errors(error)
            raise django_forms.ValidationError(str(error)) from None
        return True

    def _step_errors(self, error):
        """Show a refusal on the step whose field it names (target, agent, ...)."""
        if isinstance(error, restore_sources.RestoreSourceError):
            targets = [(error.field, str(error))]
        else:
            errors = getattr(error, "errors", None) or {"": str(error)}
            targets = [(_API_FIELDS.get(path_leaf(p)), m) for p, m in errors.items()]
        for field, message in targets:
            step = next((s for s in self.steps if field and field in s.action.fields), None)
            if step is None:
                step, field = self.get_step("review"), None
            step.action.add_error(field, message)
            step.has_errors = True


def path_leaf(path):
    return str(path).replace("]", "").replace("[", ".").split(".")[-1]


# Leaf of an API document path -> wizard field.
_API_FIELDS = {
    "restore_abs_path": "target",
    "client_id": "client_id",
    "overwrite": "overwrite",
    "generation_id": "generation_id",
    "paths": "paths",
}
