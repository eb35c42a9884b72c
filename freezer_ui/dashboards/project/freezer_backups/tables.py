from urllib.parse import urlencode

from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape, format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables

from freezer_ui.api import backup_groups
from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils

STATUS_DISPLAY = (
    ("creating", _("Creating")),
    ("available", _("Available")),
    ("error", _("Error")),
    ("deleting", _("Deleting")),
    ("deleted", _("Deleted")),
)
STATUS_CHOICES = (
    ("available", True),
    ("creating", None),
    ("deleting", None),
    ("error", False),
    ("deleted", False),
)
ORIGIN_DISPLAY = (
    (backup_groups.ORIGIN_OURS, _("freezer-ui")),
    (backup_groups.ORIGIN_UPSTREAM, _("upstream Freezer")),
)
SORT_PARAM = "sort"
DIR_PARAM = "dir"


def bytes_display(value):
    return filesizeformat(value) if value not in (None, "") else "-"


def backup_time(backup):
    return utils.timestamp_to_datetime(backup.time_stamp)


def group_time(group):
    return utils.timestamp_to_datetime(group.last_time)


def restore_url(backup_id):
    """The restore wizard preselecting ``backup_id``, or None if the wizard is not installed."""
    try:
        return (
            reverse("horizon:project:freezer_restore:wizard")
            + "?"
            + urlencode({"backup_id": backup_id})
        )
    except NoReverseMatch:
        return None


class SortableColumn(tables.Column):
    """A column whose header is a link that sorts the table *on the server*.

    Horizon's own sorting is client-side and would only sort the current page. The view sets
    ``sort_url`` (a function of the sort key and direction) and the current sort on the table;
    the header renders as a link (escaped text inside ``format_html``).  Django's template
    engine turns a non-string into text with ``str()`` before escaping, so ``__str__`` returns
    the already-escaped ``SafeString``.
    """

    def __init__(self, *args, sort_key=None, **kwargs):
        kwargs.setdefault("sortable", False)  # no client-side sorting of one page
        super().__init__(*args, **kwargs)
        self.sort_key = sort_key

    def __str__(self):
        table = getattr(self, "table", None)
        make_url = getattr(table, "sort_url", None)
        if not self.sort_key or make_url is None:
            return conditional_escape(self.verbose_name)
        current, descending = getattr(table, "current_sort", (None, True))
        if current == self.sort_key:
            arrow = " \u25bc" if descending else " \u25b2"
            new_desc = not descending
        else:
            arrow = ""
            new_desc = self.sort_key in ("last_time", "generations", "size", "stored_bytes",
                                         "time_stamp")  # fmt: skip
        return format_html(
            '<a href="{}" class="freezer-sort">{}{}</a>',
            make_url(self.sort_key, new_desc),
            self.verbose_name,
            arrow,
        )


class ServerSortedTable(utils.PagedDataTable):
    """Paging links keep the sort (the server filter is kept in the session by Horizon)."""

    current_sort = (None, True)
    sort_url = None

    def _sort_query(self):
        key, descending = self.current_sort
        if not key:
            return ""
        return "&" + urlencode({SORT_PARAM: key, DIR_PARAM: "desc" if descending else "asc"})

    def get_pagination_string(self):
        return super().get_pagination_string() + self._sort_query()

    def get_prev_pagination_string(self):
        return super().get_prev_pagination_string() + self._sort_query()


class GroupFilter(tables.FilterAction):
    # Server side: groups are paged in the database, a browser filter would see one page.
    filter_type = "server"
    filter_choices = (("search", _("Name or host ="), True),)


def group_link(group):
    if not group.last_backup_id:
        return None
    return reverse("horizon:project:freezer_backups:group", args=[group.last_backup_id])


class GroupsTable(ServerSortedTable):
    backup_name = SortableColumn(
        "backup_name", verbose_name=_("Backup name"), link=group_link, sort_key="backup_name"
    )
    hostname = SortableColumn("hostname", verbose_name=_("Host"), sort_key="hostname")
    engine = SortableColumn("engine_name", verbose_name=_("Engine"), sort_key="engine_name")
    storage = SortableColumn("storage", verbose_name=_("Storage"), sort_key="storage")
    origin = SortableColumn(
        "origin", verbose_name=_("Written by"), display_choices=ORIGIN_DISPLAY, sort_key="origin"
    )
    generations = SortableColumn(
        "generations", verbose_name=_("Generations"), sort_key="generations"
    )
    last_time = SortableColumn(
        group_time,
        verbose_name=_("Last backup"),
        filters=(utils.format_datetime,),
        sort_key="last_time",
    )
    last_status = tables.Column(
        "last_status",
        verbose_name=_("Last status"),
        status=True,
        status_choices=STATUS_CHOICES,
        display_choices=STATUS_DISPLAY,
        sortable=False,
    )
    size = SortableColumn(
        "size", verbose_name=_("Logical size (all)"), filters=(bytes_display,), sort_key="size"
    )
    stored = SortableColumn(
        "stored_bytes",
        verbose_name=_("Stored"),
        filters=(bytes_display,),
        sort_key="stored_bytes",
    )

    def get_object_id(self, datum):
        return datum.last_backup_id or "|".join(datum.key)

    class Meta:
        name = "backup_groups"
        verbose_name = _("Backups")
        table_actions = (GroupFilter,)


def generation_kind(backup):
    """What a generation holds, for people.

    Every generation of our engines is logically full; tar deduplicates files, block engines
    store changed blocks.  Upstream Freezer levels are real incrementals (level 0 = full).
    """
    origin = backup_groups.record_origin(backup)
    engine = backup.engine_name or ""
    if origin == backup_groups.ORIGIN_OURS:
        if engine in ("", "tar"):
            return _("full (deduplicated)")
        return _("full (changed blocks)")
    level = backup.level or 0
    if engine == "rsync":
        return _("changed blocks (level %(level)s)") % {"level": level}
    if not level:
        return _("full")
    return _("incremental (level %(level)s)") % {"level": level}


def dedup_display(backup):
    meta = backup.to_dict().get("backup_metadata") or {}
    ratio = meta.get("dedup_ratio")
    if not isinstance(ratio, int | float) or isinstance(ratio, bool):
        return "-"
    return f"{ratio * 100:.1f}\u00a0%"


def record_detail(backup):
    """Status detail: the error of a failed backup, the progress of one being created."""
    meta = backup.to_dict().get("backup_metadata") or {}
    if backup.status == "error":
        return meta.get("error") or ""
    if backup.status == "creating":
        progress = meta.get("progress") or {}
        done, total = progress.get("bytes_done"), progress.get("bytes_total")
        if isinstance(done, int | float) and isinstance(total, int | float) and total:
            return _("%(percent)d%% of %(total)s") % {
                "percent": min(100, int(done * 100 / total)),
                "total": filesizeformat(total),
            }
        return _("in progress")
    return ""


class BrowseLink(tables.LinkAction):
    name = "browse"
    verbose_name = _("Browse files")
    url = "horizon:project:freezer_backups:detail"

    def allowed(self, request, backup=None):
        return (
            backup is not None
            and backup.status == "available"
            and backup_groups.record_origin(backup) == backup_groups.ORIGIN_OURS
        )


class RestoreLink(tables.LinkAction):
    name = "restore"
    verbose_name = _("Restore")

    def get_link_url(self, datum=None):
        return restore_url(datum.id) if datum is not None else "#"

    def allowed(self, request, backup=None):
        return backup is not None and backup.status == "available" and restore_url("x")


class DeleteBackup(tables.DeleteAction):
    help_text = _(
        "The backup record is removed. The generation's data stays in its repository until a "
        "retention policy forgets it."
    )

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Backup", "Delete Backups", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Backup", "Deleted Backups", count)

    def allowed(self, request, backup=None):
        return backup is None or backup.status not in ("creating", "deleting")

    def delete(self, request, obj_id):
        api_freezer.backup_delete(request, obj_id)


class GenerationsTable(ServerSortedTable):
    time = SortableColumn(
        backup_time,
        verbose_name=_("Time"),
        link="horizon:project:freezer_backups:detail",
        filters=(utils.format_datetime,),
        sort_key="time_stamp",
    )
    kind = tables.Column(generation_kind, verbose_name=_("Kind"), sortable=False)
    files = tables.Column("files", verbose_name=_("Files"), empty_value="-", sortable=False)
    size = tables.Column(
        "size", verbose_name=_("Logical size"), filters=(bytes_display,), sortable=False
    )
    new = tables.Column(
        "new_bytes", verbose_name=_("New data"), filters=(bytes_display,), sortable=False
    )
    dedup = tables.Column(dedup_display, verbose_name=_("Already stored"), sortable=False)
    status = SortableColumn(
        "status",
        verbose_name=_("Status"),
        status=True,
        status_choices=STATUS_CHOICES,
        display_choices=STATUS_DISPLAY,
        sort_key="status",
    )
    detail = tables.Column(record_detail, verbose_name=_("Details"), sortable=False)

    class Meta:
        name = "generations"
        verbose_name = _("Generations")
        status_columns = ("status",)
        table_actions = (DeleteBackup,)
        row_actions = (BrowseLink, RestoreLink, DeleteBackup)


class VersionsTable(tables.DataTable):
    time = tables.Column("time_display", verbose_name=_("Generation time"), sortable=False)
    present = tables.Column("present_display", verbose_name=_("In this generation"), sortable=False)
    size = tables.Column("size", verbose_name=_("Size"), filters=(bytes_display,), sortable=False)
    mtime = tables.Column("mtime_display", verbose_name=_("Modified"), sortable=False)
    changed = tables.Column("changed_display", verbose_name=_("Changed"), sortable=False)
    download = tables.Column(
        "download_label", verbose_name=_("Download"), link=lambda v: v.download_url, sortable=False
    )

    def get_object_id(self, datum):
        return datum.generation_id

    class Meta:
        name = "versions"
        verbose_name = _("Versions")
