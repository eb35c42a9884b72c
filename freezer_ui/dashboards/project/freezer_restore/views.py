import json

from django import http
from django.conf import settings
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django.views import generic
from horizon import exceptions, messages, tables, views, workflows

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api import restore_sources
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_restore import tables as restore_tables
from freezer_ui.dashboards.project.freezer_restore import workflows as restore_workflows

INDEX_URL = "horizon:project:freezer_restore:index"


class IndexView(utils.PagedTableMixin, tables.DataTableView):
    table_class = restore_tables.RestorePointsTable
    template_name = "freezer_ui/project/freezer_restore/index.html"
    page_title = _("Restore")

    def get_data(self):
        offset, limit = self.page()
        try:
            backups, self._more = api_freezer.backup_list(self.request, limit=limit, offset=offset)
        except Exception:
            return self.api_failed(_("Unable to retrieve backups."))
        # Only a backup that reached its storage can be restored from.
        return [b for b in backups if (b.status or "available") == "available"]


def load_backup(request, backup_id):
    """``(backup, source, generations)`` for a backup of the caller's project.

    Raises RestoreSourceError with a message for people: unknown or another project's ID
    (the API says NotFound for both, and so does this), a failed backup, an unknown format.
    """
    if not backup_id:
        raise restore_sources.RestoreSourceError(
            "backup_id", _("Choose the backup to restore from in the list below.")
        )
    backup, source = restore_sources.backup_for(request, backup_id)
    return backup, source, source.generations(request, backup)


class WizardView(workflows.WorkflowView):
    workflow_class = restore_workflows.RestoreWizard
    template_name = "freezer_ui/project/freezer_restore/wizard.html"
    page_title = _("Restore")

    def dispatch(self, request, *args, **kwargs):
        backup_id = request.POST.get("backup_id") or request.GET.get("backup_id") or ""
        try:
            backup, source, generations = load_backup(request, backup_id)
        except restore_sources.RestoreSourceError as error:
            # Nothing of the backup is shown: the message is the same for a deleted backup and
            # for another project's, so the page tells nothing about other projects.
            messages.error(request, str(error))
            return redirect(INDEX_URL)
        except Exception:
            exceptions.handle(request, _("Unable to retrieve the backup."))
            return redirect(INDEX_URL)
        self.restore_seed = {
            "backup_id": backup.id,
            "backup": backup,
            "source": source,
            "generations": generations,
        }
        return super().dispatch(request, *args, **kwargs)

    def get_initial(self):
        initial = dict(self.restore_seed)
        generations = initial["generations"]
        if generations:
            initial["generation_id"] = generations[0].id  # newest first
        return initial

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["page_title"] = self.page_title
        backup = self.restore_seed["backup"]
        context["backup"] = backup
        context["source"] = self.restore_seed["source"]
        context["resolve_url"] = reverse(
            "horizon:project:freezer_restore:resolve", args=[backup.id]
        )
        # The browse REST endpoint (freezer_ui/api/rest/browse.py), under Horizon's /api/.
        context["tree_url"] = f"{settings.WEBROOT}api/freezer_ui/backups/"
        context["generations_json"] = json.dumps(
            [restore_workflows.generation_json(g) for g in self.restore_seed["generations"]]
        )
        return context


def _json_error(message, status=400, field=""):
    return http.JsonResponse({"error": str(message), "field": field}, status=status)


class ResolveView(generic.View):
    """``GET ?at=<ISO date-time>`` → the generation a restore "as of" that instant uses.

    Naive date-times are in the user's Horizon time zone, as the wizard's input sends them.
    """

    def get(self, request, backup_id):
        from django.utils import timezone

        at = parse_datetime(request.GET.get("at") or "")
        if at is None:
            return _json_error(_("Give a date and time."), field="point_in_time")
        if timezone.is_naive(at):
            at = timezone.make_aware(at)
        try:
            backup, source = restore_sources.backup_for(request, backup_id)
            gen = source.resolve(request, backup, at)
        except restore_sources.RestoreSourceError as error:
            status = 404 if error.field == "backup_id" else 400
            return _json_error(error, status=status, field=error.field)
        except Exception as error:  # noqa: BLE001 - reported to the page, not raised as a 500
            return _json_error(
                _("Unable to resolve the point in time: %(error)s") % {"error": error}, 503
            )
        return http.JsonResponse({"generation": restore_workflows.generation_json(gen)})


# ----------------------------------------------------------------------------- progress
# A run's status (freezer_ui.api.resources.JobRun.status), for people.
STATE_TEXT = {
    "waiting": _("Waiting for the agent"),
    "running": _("Running"),
    "success": _("Restored"),
    "fail": _("Failed"),
    "aborted": _("Aborted"),
    "interrupted": _("Interrupted (the agent stopped during the run)"),
}


def restore_target(job):
    for action in job.actions:
        if action.get("action") == "restore":
            return action
    return {}


def run_state(request, job_id):
    """What the progress page shows for restore job ``job_id``: a JSON-ready dict.

    ``state`` is ``waiting`` (no run yet), ``running``, ``success``, ``fail``, ``aborted`` or
    ``interrupted``; the run's live progress and, once it ended, its summary or error.
    """
    job = api_freezer.job_get(request, job_id)
    state = {
        "job_id": job.id,
        "state_text": "",
        "description": job.description,
        "state": "waiting",
        "progress": {},
        "summary": {},
        "error": "",
        "log": [],
        "log_text": "",
    }
    try:
        runs, _more = api_freezer.job_run_list(request, job_id=job_id, limit=1, offset=0)
    except api_exceptions.Unavailable:
        # freezer-api keeps no run history (remote mode): the job's own status is all there is.
        return _state_from_job(job, state)
    run = runs[0] if runs else None
    if run is None:
        if utils.job_state(job) in ("stop", "completed", "aborted") and job.result == "fail":
            state.update(state="fail", error=_("The job failed before a run was recorded."))
        state["state_text"] = STATE_TEXT.get(state["state"], state["state"])
        return state
    progress = run.progress
    state.update(state=run.status or "running", log=run.log[-20:])
    state["log_text"] = "\n".join(state["log"])
    state["progress"] = {
        **progress,
        "bytes_done_text": str(filesizeformat(progress.get("bytes_done") or 0)),
        "bytes_total_text": str(filesizeformat(progress.get("bytes_total") or 0)),
        "rate_text": (str(filesizeformat(progress["rate"])) + "/s" if progress.get("rate") else ""),
        "eta_text": _seconds_text(progress.get("eta")),
    }
    state["state_text"] = STATE_TEXT.get(state["state"], state["state"])
    if run.status not in ("running", ""):
        summary = run.summary
        for outcome in run.actions:
            if outcome.get("error") and not state["error"]:
                state["error"] = outcome["error"]
            if not summary and outcome.get("summary"):
                summary = outcome["summary"]
        if run.status != "success" and not state["error"]:
            state["error"] = run.reason or _("The restore did not complete.")
        if summary:
            state["summary"] = {
                **summary,
                "bytes_text": str(filesizeformat(summary.get("bytes") or 0)),
                "duration_text": _seconds_text(summary.get("duration")),
            }
    return state


def _state_from_job(job, state):
    result = job.result
    if utils.job_state(job) == "running":
        state["state"] = "running"
    elif result in ("success", "fail", "aborted") and not job.event:
        state["state"] = result
    if state["state"] == "fail":
        state["error"] = _("The restore failed; the agent's log on its host says why.")
    state["note"] = _("Live progress and the summary need the run history (embedded mode).")
    state["state_text"] = STATE_TEXT.get(state["state"], state["state"])
    return state


def _seconds_text(value):
    if value is None or value == "":
        return ""
    try:
        exact = max(0.0, float(value))
    except (TypeError, ValueError):
        return ""
    if exact < 60:
        # Small restores take well under a second: "0:00" would say nothing.
        return _("%(seconds).1f s") % {"seconds": exact}
    seconds = int(round(exact))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressView(views.HorizonTemplateView):
    template_name = "freezer_ui/project/freezer_restore/progress.html"
    page_title = _("Restore progress")

    def get(self, request, *args, **kwargs):
        try:
            self.job = api_freezer.job_get(request, kwargs["job_id"])
        except api_exceptions.NotFound:
            messages.error(request, _("No such restore job in this project."))
            return redirect(INDEX_URL)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["job"] = self.job
        action = restore_target(self.job)
        context["restore"] = {
            "backup_name": action.get("backup_name") or "-",
            # The wizard names a generation; a job written by hand may give a date instead.
            "generation": action.get("generation_id") or action.get("restore_from_date") or "-",
            "target": action.get("restore_abs_path") or "-",
            "paths": ", ".join(action.get("paths") or []),
        }
        try:
            context["state"] = run_state(self.request, self.job.id)
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the restore's progress."))
            # Unknown for now: the page keeps asking (restore_wizard.js) and shows the answer.
            context["state"] = {
                "state": "",
                "state_text": "",
                "progress": {},
                "summary": {},
                "error": "",
                "log": [],
                "log_text": "",
            }
        context["state_url"] = reverse(
            "horizon:project:freezer_restore:progress_state", args=[self.job.id]
        )
        return context


class ProgressStateView(generic.View):
    def get(self, request, job_id):
        try:
            state = run_state(request, job_id)
        except api_exceptions.NotFound:
            return _json_error(_("No such restore job in this project."), 404)
        except Exception as error:  # noqa: BLE001 - the page keeps polling and shows it
            return _json_error(
                _("Unable to retrieve the restore's progress: %(error)s") % {"error": error}, 503
            )
        return http.JsonResponse(_plain(state))


def _plain(value):
    """Lazy translation strings to str, for JsonResponse."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
