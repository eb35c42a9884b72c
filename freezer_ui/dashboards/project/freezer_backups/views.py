"""Backups panel: groups of generations, one group's timeline, and the generation browser.

Every view reaches the backend through ``freezer_ui.api`` (``freezer``, ``backup_groups`` and
``browse``); another project's backup ID is a NotFound there, so it never shows data here.
"""

import datetime
from urllib.parse import quote, urlencode

from django import http
from django.conf import settings
from django.contrib import messages as django_messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import generic
from horizon import exceptions, tables, views
from horizon.utils import memoized

from freezer_ui.api import backup_groups, browse
from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import freezer as api_freezer
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_backups import tables as backup_tables

INDEX_URL = "horizon:project:freezer_backups:index"
DETAIL_URL = "horizon:project:freezer_backups:detail"
# Entries of one directory shown per page of the browser.
DIR_PAGE = 200


class SortMixin:
    """``?sort=&dir=`` of server-sorted tables; unknown keys fall back to the default."""

    sort_keys = ()
    default_sort = ""

    def sort(self):
        key = self.request.GET.get(backup_tables.SORT_PARAM) or self.default_sort
        if key not in self.sort_keys:
            key = self.default_sort
        descending = self.request.GET.get(backup_tables.DIR_PARAM, "desc") != "asc"
        table = self.get_table()
        table.current_sort = (key, descending)
        base = self.request.path

        def sort_url(sort_key, desc):
            query = {backup_tables.SORT_PARAM: sort_key, backup_tables.DIR_PARAM: "desc" if desc
                     else "asc"}  # fmt: skip
            return base + "?" + urlencode(query)

        table.sort_url = sort_url
        return key, descending


class IndexView(SortMixin, utils.PagedTableMixin, tables.DataTableView):
    table_class = backup_tables.GroupsTable
    template_name = "freezer_ui/project/freezer_backups/index.html"
    page_title = _("Backups")
    sort_keys = backup_groups.GROUP_SORTS
    default_sort = backup_groups.DEFAULT_GROUP_SORT

    def get_data(self):
        offset, limit = self.page()
        key, descending = self.sort()
        info = self.get_server_filter_info(self.request) or {}
        try:
            groups, self._more = backup_groups.backup_group_list(
                self.request,
                limit=limit,
                offset=offset,
                sort=key,
                descending=descending,
                search=info.get("value") or None,
            )
        except Exception:
            return self.api_failed(_("Unable to retrieve backups."))
        return groups


class GroupView(SortMixin, utils.PagedTableMixin, tables.DataTableView):
    """The generations of one backup (the group of ``backup_id``), newest first."""

    table_class = backup_tables.GenerationsTable
    template_name = "freezer_ui/project/freezer_backups/group.html"
    page_title = _("Backup {{ group.backup_name }} on {{ group.hostname }}")
    sort_keys = backup_groups.BACKUP_SORTS
    default_sort = "time_stamp"

    @memoized.memoized_method
    def get_group(self):
        try:
            return backup_groups.backup_group_get(self.request, self.kwargs["backup_id"])[1]
        except Exception:
            exceptions.handle(
                self.request, _("Unable to retrieve the backup."), redirect=reverse(INDEX_URL)
            )

    def get_data(self):
        self.get_group()  # redirects with a message when the id is not ours
        offset, limit = self.page()
        key, descending = self.sort()
        try:
            records, self._more = backup_groups.backup_group_backups(
                self.request,
                self.kwargs["backup_id"],
                limit=limit,
                offset=offset,
                sort=key,
                descending=descending,
            )
        except Exception:
            return self.api_failed(_("Unable to retrieve the generations of this backup."))
        return records

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        group = self.get_group()
        context["group"] = group
        context["last_time"] = utils.format_datetime(utils.timestamp_to_datetime(group.last_time))
        context["upstream"] = group.origin == backup_groups.ORIGIN_UPSTREAM
        context["url"] = reverse(INDEX_URL)
        return context


def _breadcrumb(backup_id, parts):
    url = reverse(DETAIL_URL, args=[backup_id])
    crumbs = [{"name": _("(root)"), "url": url}]
    for i in range(len(parts)):
        crumbs.append(
            {"name": parts[i], "url": url + "?" + urlencode({"path": "/".join(parts[: i + 1])})}
        )
    return crumbs


def _mtime(seconds):
    if seconds is None:
        return "-"
    try:
        value = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return "-"
    return utils.format_datetime(value)


class DetailView(views.HorizonTemplateView):
    """One generation: its record, and its files (a lazy tree, search, downloads)."""

    template_name = "freezer_ui/project/freezer_backups/detail.html"
    page_title = "{{ backup.backup_name }}"

    @memoized.memoized_method
    def get_backup(self):
        try:
            return api_freezer.backup_get(self.request, self.kwargs["backup_id"])
        except Exception:
            exceptions.handle(
                self.request, _("Unable to retrieve the backup."), redirect=reverse(INDEX_URL)
            )

    def _browse(self, backup, context):
        """Fill the browser part of the context; a backup that cannot be browsed says why."""
        path = self.request.GET.get("path", "")
        query = (self.request.GET.get("q") or "").strip()
        try:
            offset = max(0, int(self.request.GET.get("offset", 0)))
        except ValueError:
            offset = 0
        try:
            parts = browse.clean_path(path)
            if query:
                entries, more = browse.search(self.request, backup.id, query), False
            else:
                entries, more = browse.list_dir(
                    self.request, backup.id, path, offset=offset, limit=DIR_PAGE
                )
        except api_exceptions.NotFound:
            raise
        except browse.BrowseError as exc:
            context["browse_error"] = str(exc)
            return
        base = reverse(DETAIL_URL, args=[backup.id])
        for entry in entries:
            entry["mtime_display"] = _mtime(entry["mtime"])
            q = urlencode({"path": entry["path"]})
            if entry["type"] == "dir":
                entry["open_url"] = f"{base}?{q}"
                entry["tar_url"] = reverse("horizon:project:freezer_backups:tar",
                                           args=[backup.id]) + "?" + q  # fmt: skip
            elif entry["type"] in browse.FILE_TYPES:
                entry["download_url"] = reverse("horizon:project:freezer_backups:file",
                                                args=[backup.id]) + "?" + q  # fmt: skip
                entry["versions_url"] = reverse("horizon:project:freezer_backups:versions",
                                                args=[backup.id]) + "?" + q  # fmt: skip
        context.update(
            browsable=True,
            path="/".join(parts),
            query=query,
            entries=entries,
            breadcrumb=_breadcrumb(backup.id, parts),
            next_url=(
                f"{base}?{urlencode({'path': '/'.join(parts), 'offset': offset + DIR_PAGE})}"
                if more
                else None
            ),  # fmt: skip
            prev_url=(
                f"{base}?{urlencode({'path': '/'.join(parts), 'offset': max(0, offset - DIR_PAGE)})}"  # noqa: E501
                if offset
                else None
            ),  # fmt: skip
            tar_all_url=reverse("horizon:project:freezer_backups:tar", args=[backup.id]),
            tar_dir_url=(
                reverse("horizon:project:freezer_backups:tar", args=[backup.id])
                + "?"
                + urlencode({"path": "/".join(parts)})
                if parts
                else None
            ),  # fmt: skip
            # For browse.js: the REST endpoints of the lazy tree and the page's own URLs.
            api_url=f"{settings.WEBROOT.rstrip('/')}/api/freezer_ui/backups/{quote(backup.id)}/",
            detail_url=base,
        )

    def get_context_data(self, **kwargs):
        backup = self.get_backup()
        context = super().get_context_data(backup=backup, **kwargs)
        context["created"] = utils.format_datetime(utils.timestamp_to_datetime(backup.time_stamp))
        context["url"] = reverse(INDEX_URL)
        context["group_url"] = reverse("horizon:project:freezer_backups:group", args=[backup.id])
        context["origin"] = backup_groups.record_origin(backup)
        context["kind"] = backup_tables.generation_kind(backup)
        context["dedup"] = backup_tables.dedup_display(backup)
        context["status_detail"] = backup_tables.record_detail(backup)
        context["restore_url"] = (
            backup_tables.restore_url(backup.id) if backup.status == "available" else None
        )
        try:
            self._browse(backup, context)
        except api_exceptions.NotFound:
            exceptions.handle(
                self.request, _("Unable to retrieve the backup."), redirect=reverse(INDEX_URL)
            )
        return context


class VersionsView(tables.DataTableView):
    """One file across the generations of its backup."""

    table_class = backup_tables.VersionsTable
    template_name = "freezer_ui/project/freezer_backups/versions.html"
    page_title = _("Versions of {{ path }}")

    def get_data(self):
        backup_id = self.kwargs["backup_id"]
        path = self.request.GET.get("path", "")
        self._path = path
        self._error = None
        try:
            versions = browse.file_versions(self.request, backup_id, path)
        except api_exceptions.NotFound:
            raise http.Http404(_("No such backup in this project.")) from None
        except browse.BrowseError as exc:
            self._error = str(exc)
            return []
        rows = []
        for v in versions:
            row = _Row(v)
            row.time_display = _mtime(v["time"])
            row.present_display = _("yes") if v["present"] else _("no (absent)")
            row.mtime_display = _mtime(v["mtime"])
            row.changed_display = _("changed") if v["changed"] else _("unchanged")
            row.download_label = _("Download") if v["present"] and v["backup_id"] else "-"
            row.download_url = (
                reverse("horizon:project:freezer_backups:file", args=[v["backup_id"]])
                + "?"
                + urlencode({"path": path})
                if v["present"] and v["backup_id"]
                else None
            )
            rows.append(row)
        return rows

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["path"] = self._path
        context["browse_error"] = self._error
        context["detail_url"] = reverse(DETAIL_URL, args=[self.kwargs["backup_id"]])
        return context


class _Row:
    def __init__(self, values):
        self.__dict__.update(values)


def _download_error(request, backup_id, exc):
    """A refused download: back to the generation page with the reason, no bytes sent."""
    django_messages.error(request, str(exc))
    return redirect(reverse(DETAIL_URL, args=[backup_id]))


def content_disposition(name):
    """``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    fallback = browse.safe_filename(name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name or fallback)}"


class FileDownloadView(generic.View):
    """One file, streamed from the repository chunk by chunk (each chunk verified)."""

    def get(self, request, backup_id):
        path = request.GET.get("path", "")
        try:
            size, chunks = browse.open_file(request, backup_id, path)
        except api_exceptions.NotFound:
            raise http.Http404(_("No such backup in this project.")) from None
        except browse.BrowseError as exc:
            return _download_error(request, backup_id, exc)
        response = http.StreamingHttpResponse(chunks, content_type="application/octet-stream")
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = content_disposition(path.rstrip("/").split("/")[-1])
        response["X-Content-Type-Options"] = "nosniff"
        return response


class TarDownloadView(generic.View):
    """A directory or the whole generation as a .tar, written while it is sent."""

    def get(self, request, backup_id):
        path = request.GET.get("path") or None
        try:
            stream = browse.tar_stream(request, backup_id, path)
            record = api_freezer.backup_get(request, backup_id)
        except api_exceptions.NotFound:
            raise http.Http404(_("No such backup in this project.")) from None
        except browse.BrowseError as exc:
            return _download_error(request, backup_id, exc)
        base = path.rstrip("/").split("/")[-1] if path else record.backup_name or "backup"
        name = f"{base}-{record.generation_id[:12]}.tar"
        response = http.StreamingHttpResponse(stream, content_type="application/x-tar")
        response["Content-Disposition"] = content_disposition(name)
        response["X-Content-Type-Options"] = "nosniff"
        return response
