"""Helpers shared by the freezer-ui panels: offset paging, admin checks, display filters."""

import datetime

from django.template.defaultfilters import date as date_filter
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from horizon import exceptions, tables
from horizon.utils import functions as horizon_utils
from openstack_dashboard.api import keystone

from freezer_ui.api import freezer as api_freezer

# Panels and calls that span every project need the admin role.  Both the panel (Horizon checks
# ``permissions`` on each of its URLs) and the API call (``all_projects=True`` raises Forbidden
# for non-admins) enforce it, so hiding a link is never the only guard.
ADMIN_PERMISSIONS = ("openstack.roles.admin",)

# What a job is doing (see job_state), in the order the overview shows the states.
JOB_STATES = (
    ("running", _("Running")),
    ("starting", _("Start requested")),
    ("scheduled", _("Scheduled")),
    ("stopping", _("Stop requested")),
    ("completed", _("Completed")),
    ("stop", _("Stopped")),
    ("new", _("Not started")),
    ("aborting", _("Aborting")),
    ("aborted", _("Aborted")),
    ("removed", _("Removed")),
)
# States in which a job may be started, and in which it may be stopped.
# "scheduled": a job waiting for its next interval can be run now (the agent runs a start event
# whatever the schedule; the interval then continues from this run).
STARTABLE_STATES = ("new", "stop", "completed", "aborted", "scheduled")
STOPPABLE_STATES = ("starting", "scheduled", "running")


def job_state(job):
    """What the job is doing, for people: freezer-api's status refined by its pending event.

    A start or stop is a request (``job_schedule.event``) that the agent acts on later, while
    ``status`` still shows the old state; showing only the status would offer "Start" again on
    a job that is about to start.
    """
    status = job.status or ""
    if job.event == "start" and status not in ("scheduled", "running"):
        return "starting"
    if job.event == "stop" and status in ("scheduled", "running"):
        return "stopping"
    return status or "new"


# Query parameter that carries the offset of a page; a plain number, so a hand-edited URL can
# only ask for another page, never for another project's data.
OFFSET_PARAM = "offset"


class PagedDataTable(tables.DataTable):
    """A DataTable whose "Next"/"Prev" links carry an offset instead of a marker.

    freezer-api pages its lists by ``limit``/``offset``, not by the id of the last row, so the
    links Horizon renders (``?marker=<id>``) are replaced by ``?offset=<n>``.  The view sets
    ``page_offset`` and ``page_size`` before the table renders.
    """

    page_offset = 0
    page_size = 20

    def get_pagination_string(self):
        return f"{OFFSET_PARAM}={self.page_offset + len(self.data)}"

    def get_prev_pagination_string(self):
        return f"{OFFSET_PARAM}={max(0, self.page_offset - self.page_size)}"

    def get_object_id(self, datum):
        return datum.id


class PagedTableMixin:
    """For a ``DataTableView`` over a ``*_list`` API call that returns ``(items, has_more)``."""

    _more = False
    _offset = 0
    # Set when the API call failed, so the page says so instead of claiming the list is empty.
    api_error = False

    def page(self):
        """``(offset, limit)`` of the requested page, from the query string and user setting."""
        try:
            offset = max(0, int(self.request.GET.get(OFFSET_PARAM, 0)))
        except ValueError:
            offset = 0
        limit = horizon_utils.get_page_size(self.request)
        self._offset = offset
        table = self.get_table()
        table.page_offset = offset
        table.page_size = limit
        return offset, limit

    def has_more_data(self, table):
        return self._more

    def has_prev_data(self, table):
        return self._offset > 0

    def api_failed(self, message):
        """Report the exception being handled (call it in an ``except`` block); empty page."""
        self.api_error = True
        self._more = False
        exceptions.handle(self.request, message)
        return []

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["api_error"] = self.api_error
        return context


def is_admin(request):
    return request.user.has_perms(ADMIN_PERMISSIONS)


def timestamp_to_datetime(value):
    """A freezer-api ``time_stamp`` (seconds since the epoch) as an aware datetime, or None.

    0 means "not recorded" (the resources use it for a missing value), not 1970.
    """
    if not value:
        return None
    try:
        return datetime.datetime.fromtimestamp(int(value), tz=datetime.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def parse_iso(value):
    """A freezer-api ISO date (``2025-01-31T10:00:00``, maybe with an offset) as a datetime.

    Dates without an offset are UTC: that is how this plugin writes them (see
    ``forms.to_api_date``).  Anything unparsable gives None rather than an error page, since the
    document may come from another freezer-api client.
    """
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


_SINGULAR_UNITS = {
    "second": _("Every second"),
    "minute": _("Every minute"),
    "hour": _("Every hour"),
    "day": _("Every day"),
    "week": _("Every week"),
}


def schedule_display(interval):
    """Human text for a ``schedule_interval`` value (``"6 hours"``, ``"continuous"`` or empty)."""
    if not interval:
        return _("Once")
    if interval == "continuous":
        return _("Continuously")
    number, _sep, unit = str(interval).strip().partition(" ")
    unit = unit.strip().rstrip("s")
    if number == "1" and unit in _SINGULAR_UNITS:
        return _SINGULAR_UNITS[unit]  # "Every day", not "Every 1 days"
    return _("Every %(interval)s") % {"interval": interval}


def format_datetime(value):
    """An aware datetime in the user's Horizon time zone, or "-"."""
    if not value:
        return "-"
    return date_filter(timezone.localtime(value), "Y-m-d H:i:s")


class ProjectColumn(tables.Column):
    """The project's name, from the ``project_names`` map the admin view puts on the table."""

    def __init__(self, **kwargs):
        kwargs.setdefault("verbose_name", _("Project"))
        super().__init__("project_id", **kwargs)

    def get_raw_data(self, datum):
        project_id = datum.project_id
        return getattr(self.table, "project_names", {}).get(project_id, project_id)


class AllProjectsFilter(tables.FilterAction):
    # Server side: rows come from every project, page by page, so a browser filter would only
    # see the current page.
    filter_type = "server"
    filter_choices = (
        ("project", _("Project ="), True),
        ("search", _("Text ="), True),
    )


class AllProjectsMixin(PagedTableMixin):
    """Admin list views: every project's rows, a project column and a project filter.

    ``list_function`` names the API call (looked up on the module at call time, so tests can
    patch it): ``f(request, limit=, offset=, search=, all_projects=True)``.  The API refuses
    ``all_projects`` to non-admins, on top of the panel's own role check.
    """

    list_function = ""
    error_message = _("Unable to retrieve data.")

    def project_names(self):
        try:
            projects, _more = keystone.tenant_list(self.request)
        except Exception:
            # Names are a convenience: without them the column shows project IDs.
            exceptions.handle(self.request, _("Unable to retrieve project names."))
            return {}
        return {p.id: p.name for p in projects}

    def get_data(self):
        offset, limit = self.page()
        names = self.project_names()
        self.get_table().project_names = names
        info = self.get_server_filter_info(self.request) or {}
        value = (info.get("value") or "").strip()
        project_ids = None
        search = None
        if value and info.get("field") == "project":
            wanted = value.lower()
            project_ids = {pid for pid, name in names.items() if (name or "").lower() == wanted}
            if not project_ids:
                project_ids = {value}  # maybe an ID, or a project whose name is unknown here
            if len(project_ids) == 1:
                # An exact field match (freezer-api's "match" search), so paging stays right.
                search = {"match": [{"project_id": next(iter(project_ids))}]}
            # Several projects of that name (other domains): their rows are picked out below.
        elif value:
            search = value
        try:
            items, self._more = getattr(api_freezer, self.list_function)(
                self.request, limit=limit, offset=offset, search=search, all_projects=True
            )
        except Exception:
            return self.api_failed(self.error_message)
        if project_ids is not None:
            items = [item for item in items if item.project_id in project_ids]
        return items
