"""Backups grouped by (backup name, host, engine, storage, origin), paged and sorted.

The Backups panel shows one row per *backup* (a series of generations) instead of one row per
generation: with 10,000 generations a page must not mean loading 10,000 documents.

* **Embedded transport**: the grouping is one SQL ``GROUP BY`` over JSON keys of the stored
  document (``JSON_EXTRACT`` on sqlite, Django's ``KT("doc__backup_metadata__...")`` key
  transforms, ``->>`` on jsonb, elsewhere); only the page's groups come back, plus one indexed
  query for the newest record of each (its status and id).
* **Remote transport**: freezer-api 19.0.0 cannot group or sort backups.  The records are read
  page by page (``backup_list``, 500 a call) and grouped here: correct, but its cost grows with
  the number of records (docs/dashboard.md says so).

The *origin* is part of the group: a backup written by our agent (``freezer_ui_agent: true``)
and one written by the upstream Freezer agent under the same name are different things (only
ours can be browsed), so they are never merged into one row.

Like everything in ``freezer_ui.api``, each function takes ``request`` first and scopes every
query to the request's project (``all_projects`` needs the admin role).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

from freezer_ui import conf
from freezer_ui.api import freezer as api_freezer
from freezer_ui.api.exceptions import Forbidden
from freezer_ui.api.resources import Backup

ORIGIN_OURS = "ours"
ORIGIN_UPSTREAM = "upstream"

# Sort keys the panels may ask for (anything else falls back to the default).
GROUP_SORTS = (
    "backup_name",
    "hostname",
    "engine_name",
    "storage",
    "origin",
    "generations",
    "last_time",
    "size",
    "stored_bytes",
)
DEFAULT_GROUP_SORT = "last_time"
BACKUP_SORTS = ("time_stamp", "status")

# Records read per call when the remote transport has to page through everything.
_REMOTE_PAGE = 500


def origin_of(meta: dict[str, Any]) -> str:
    """``ours`` for records of our agent, ``upstream`` for the upstream Freezer agent's.

    Upstream records lack ``freezer_ui_agent``; ``freezer_legacy: true`` marks records imported
    from an upstream layout even when our code wrote them.
    """
    if meta.get("freezer_legacy") is True:
        return ORIGIN_UPSTREAM
    return ORIGIN_OURS if meta.get("freezer_ui_agent") is True else ORIGIN_UPSTREAM


def record_origin(backup: Backup) -> str:
    return origin_of(backup.to_dict().get("backup_metadata") or {})


@dataclasses.dataclass
class BackupGroup:
    """One row of the Backups panel: the generations of one backup."""

    project_id: str
    backup_name: str
    hostname: str
    engine_name: str
    storage: str
    origin: str
    generations: int
    last_time: int | None
    last_status: str
    last_backup_id: str
    size: int | None
    stored_bytes: int | None

    @property
    def id(self) -> str:
        # The newest record stands for the group in URLs: it is fetched through the project-
        # scoped backup_get, so a URL can never name another project's group.
        return self.last_backup_id

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        return (
            self.project_id,
            self.backup_name,
            self.hostname,
            self.engine_name,
            self.storage,
            self.origin,
        )


def group_key(backup: Backup) -> tuple[str, str, str, str, str, str]:
    """The group a record belongs to (same order as :attr:`BackupGroup.key`)."""
    return (
        str(backup.project_id or ""),
        _text(backup.backup_name),
        _text(backup.hostname),
        _text(backup.engine_name),
        _text(backup.storage),
        record_origin(backup),
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _check_admin(request: Any, all_projects: bool) -> None:
    if all_projects and not api_freezer.freezerclient(request).context.is_admin:
        raise Forbidden("listing all projects requires the admin role")


def _embedded() -> bool:
    return conf.get("FREEZER_UI_API_MODE") == "embedded"


# ------------------------------------------------------------------------- public functions
def backup_group_list(
    request: Any,
    *,
    limit: int = 20,
    offset: int = 0,
    sort: str = DEFAULT_GROUP_SORT,
    descending: bool = True,
    search: str | None = None,
    all_projects: bool = False,
    project_id: str | None = None,
) -> tuple[list[BackupGroup], bool]:
    """One page of backup groups and whether another page follows.

    ``search`` matches the backup name or host name (case-insensitive substring);
    ``project_id`` narrows an ``all_projects`` listing to one project.
    """
    _check_admin(request, all_projects)
    if sort not in GROUP_SORTS:
        sort = DEFAULT_GROUP_SORT
    limit = max(1, int(limit))
    offset = max(0, int(offset))
    if _embedded():
        return _embedded_groups(
            request, limit, offset, sort, descending, search, all_projects, project_id
        )
    return _remote_groups(
        request, limit, offset, sort, descending, search, all_projects, project_id
    )


def backup_group_get(request: Any, backup_id: str) -> tuple[Backup, BackupGroup]:
    """The record ``backup_id`` (project-scoped: another project's id raises NotFound) and
    the summary of its group."""
    record = api_freezer.backup_get(request, backup_id)
    key = group_key(record)
    members = list(_group_records(request, key))
    return record, _summarise(key, members)


def backup_group_backups(
    request: Any,
    backup_id: str,
    *,
    limit: int = 20,
    offset: int = 0,
    sort: str = "time_stamp",
    descending: bool = True,
) -> tuple[list[Backup], bool]:
    """One page of the records (generations) of ``backup_id``'s group, newest first."""
    record = api_freezer.backup_get(request, backup_id)
    if sort not in BACKUP_SORTS:
        sort = "time_stamp"
    limit = max(1, int(limit))
    offset = max(0, int(offset))
    key = group_key(record)
    if _embedded():
        rows = _embedded_group_rows(key)
        field = "time_stamp" if sort == "time_stamp" else "status"
        order = [
            _order(field, descending),
            _order("time_stamp", True),
            "-created_at",
            "id",
        ]
        page = [Backup(row.doc) for row in rows.order_by(*order)[offset : offset + limit + 1]]
        return page[:limit], len(page) > limit
    members = list(_group_records(request, key))
    if sort == "status":
        members.sort(key=lambda b: (b.status, b.time_stamp), reverse=descending)
    else:
        members.sort(key=lambda b: b.time_stamp, reverse=descending)
    page = members[offset : offset + limit + 1]
    return page[:limit], len(page) > limit


def backup_group_generations(request: Any, record: Backup) -> dict[str, Backup]:
    """``generation_id`` -> record, for the records of ``record``'s group (any status)."""
    out: dict[str, Backup] = {}
    for member in _group_records(request, group_key(record)):
        if member.generation_id and member.generation_id not in out:
            out[member.generation_id] = member
    return out


# ------------------------------------------------------------------------- embedded (SQL)
def _order(field: str, descending: bool) -> Any:
    from django.db.models import F

    return F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)


def _sqlite() -> bool:
    from django.db import connections

    return connections[conf.database_alias()].vendor == "sqlite"


def _meta(key: str, function: str = "JSON_EXTRACT") -> Any:
    """``backup_metadata.<key>`` of the stored document, NULL when absent.

    On sqlite, Django's key transform wraps every extraction in ``CASE WHEN JSON_TYPE(...)``
    (two JSON parses per key and row, so booleans come back as text); the group columns never
    need that, and one ``JSON_EXTRACT`` per key is several times faster on 10,000 rows.  Other
    databases (PostgreSQL: ``->``/``->>`` on jsonb) use Django's transform.
    """
    from django.db.models import F, Func, TextField, Value
    from django.db.models.fields.json import KT

    if _sqlite():
        # A constant path built from our own key names, never from user input.
        path = f'$."backup_metadata"."{key}"'
        return Func(F("doc"), Value(path), function=function, output_field=TextField())
    return KT("doc__backup_metadata__" + key)


def _meta_true(key: str) -> Any:
    """A condition: ``backup_metadata.<key>`` is JSON ``true`` (not 1, not "true")."""
    from django.db.models import Q, Value
    from django.db.models.lookups import Exact

    if _sqlite():
        return Exact(_meta(key, "JSON_TYPE"), Value("true"))
    return Q(**{"doc__backup_metadata__" + key: True})


def _annotated(rows: Any) -> Any:
    """Rows with the group's columns as SQL expressions on the JSON document."""
    from django.db.models import Case, F, TextField, Value, When
    from django.db.models.functions import Cast, Coalesce

    def text(key: str) -> Any:
        # Cast: a number where a name is expected (``"backup_name": 7``) must still compare
        # equal to the text "7" the group key holds.
        return Coalesce(Cast(_meta(key), TextField()), Value(""), output_field=TextField())

    return rows.annotate(
        g_name=text("backup_name"),
        g_host=text("hostname"),
        g_engine=text("engine_name"),
        g_storage=text("storage"),
        # The same rule as origin_of(), in SQL; a missing key matches neither branch.
        g_origin=Case(
            When(_meta_true("freezer_legacy"), then=Value(ORIGIN_UPSTREAM)),
            When(_meta_true("freezer_ui_agent"), then=Value(ORIGIN_OURS)),
            default=Value(ORIGIN_UPSTREAM),
            output_field=TextField(),
        ),
        g_project=F("project_id"),
    )


def _numeric(*keys: str) -> Any:
    """The first present JSON number among ``keys`` of backup_metadata, as a float."""
    from django.db.models import FloatField
    from django.db.models.functions import Cast, Coalesce

    casts = [Cast(_meta(key), FloatField()) for key in keys]
    return Coalesce(*casts) if len(casts) > 1 else casts[0]


def _embedded_base(request: Any, all_projects: bool, project_id: str | None) -> Any:
    from freezer_ui import models

    rows = models.Backup.objects.using(conf.database_alias())
    if not all_projects:
        return rows.filter(project_id=request.user.project_id)
    if project_id:
        return rows.filter(project_id=project_id)
    return rows


def _embedded_groups(
    request: Any,
    limit: int,
    offset: int,
    sort: str,
    descending: bool,
    search: str | None,
    all_projects: bool,
    project_id: str | None,
) -> tuple[list[BackupGroup], bool]:
    from django.db.models import Count, Max, Q, Sum

    rows = _annotated(_embedded_base(request, all_projects, project_id))
    if search and search.strip():
        text = search.strip()
        rows = rows.filter(Q(g_name__icontains=text) | Q(g_host__icontains=text))
    fields = ("g_project", "g_name", "g_host", "g_engine", "g_storage", "g_origin")
    grouped = rows.values(*fields).annotate(
        n=Count("id"),
        last=Max("time_stamp"),
        total=Sum(_numeric("size", "backup_size_uncompressed")),
        stored=Sum(_numeric("stored_bytes", "backup_size_compressed")),
    )
    column = {
        "backup_name": "g_name",
        "hostname": "g_host",
        "engine_name": "g_engine",
        "storage": "g_storage",
        "origin": "g_origin",
        "generations": "n",
        "last_time": "last",
        "size": "total",
        "stored_bytes": "stored",
    }[sort]
    # Every group column breaks ties, so paging is stable whatever the sort.
    order = [_order(column, descending)] + [f for f in fields if f != column]
    page = list(grouped.order_by(*order)[offset : offset + limit + 1])
    more = len(page) > limit
    page = page[:limit]
    newest = _newest_records(rows, page)
    groups = []
    for g in page:
        key = tuple(g[f] for f in fields)
        last = newest.get(key)
        groups.append(
            BackupGroup(
                project_id=g["g_project"],
                backup_name=g["g_name"],
                hostname=g["g_host"],
                engine_name=g["g_engine"],
                storage=g["g_storage"],
                origin=g["g_origin"],
                generations=g["n"],
                last_time=g["last"],
                last_status=last.status if last else "",
                last_backup_id=last.id if last else "",
                size=None if g["total"] is None else int(g["total"]),
                stored_bytes=None if g["stored"] is None else int(g["stored"]),
            )
        )
    return groups, more


def _newest_records(rows: Any, page: list[dict[str, Any]]) -> dict[tuple, Any]:
    """The newest record of each group on the page: one query on the indexed time stamp."""
    from django.db.models import Q

    stamps = {g["last"] for g in page if g["last"] is not None}
    cond = Q(time_stamp__in=stamps)
    if any(g["last"] is None for g in page):
        cond |= Q(time_stamp__isnull=True)
    fields = ("g_project", "g_name", "g_host", "g_engine", "g_storage", "g_origin")
    last = {tuple(g[f] for f in fields): g["last"] for g in page}
    out: dict[tuple, Any] = {}
    for row in rows.filter(cond).order_by("-created_at", "-id").only("id", "status", "time_stamp"):
        key = tuple(getattr(row, f) for f in fields)
        # Another group may share the time stamp: only the group's own newest counts.
        if key in last and last[key] == row.time_stamp:
            out.setdefault(key, row)
    return out


def _embedded_group_rows(key: tuple[str, ...]) -> Any:
    from freezer_ui import models

    project, name, host, engine, storage, origin = key
    rows = models.Backup.objects.using(conf.database_alias()).filter(project_id=project)
    # ``search_text`` holds every value of the document, lower-cased: a LIKE on it is cheap and
    # keeps only rows that can be in the group, so the JSON is parsed for those rows only
    # instead of for every record of the project.
    for value in (name, host):
        if value:
            rows = rows.filter(search_text__contains=value.lower())
    return _annotated(rows).filter(
        g_name=name,
        g_host=host,
        g_engine=engine,
        g_storage=storage,
        g_origin=origin,
    )


# ------------------------------------------------------------------------- remote (paged)
def _all_records(request: Any, all_projects: bool) -> Iterator[Backup]:
    offset = 0
    while True:
        page, more = api_freezer.backup_list(
            request, limit=_REMOTE_PAGE, offset=offset, all_projects=all_projects
        )
        yield from page
        if not more or not page:
            return
        offset += len(page)


def _group_records(request: Any, key: tuple[str, ...]) -> Iterator[Backup]:
    if _embedded():
        for row in _embedded_group_rows(key).order_by("-time_stamp", "-created_at", "id"):
            yield Backup(row.doc)
        return
    for record in _all_records(request, False):
        if group_key(record) == key:
            yield record


def _summarise(key: tuple[str, ...], members: Iterable[Backup]) -> BackupGroup:
    members = sorted(members, key=lambda b: (b.time_stamp, b.id), reverse=True)
    sizes = [b.size for b in members if isinstance(b.size, int | float)]
    stored = [b.stored_bytes for b in members if isinstance(b.stored_bytes, int | float)]
    last = members[0] if members else None
    return BackupGroup(
        project_id=key[0],
        backup_name=key[1],
        hostname=key[2],
        engine_name=key[3],
        storage=key[4],
        origin=key[5],
        generations=len(members),
        last_time=last.time_stamp if last and last.time_stamp else None,
        last_status=last.status if last else "",
        last_backup_id=last.id if last else "",
        size=int(sum(sizes)) if sizes else None,
        stored_bytes=int(sum(stored)) if stored else None,
    )


def _remote_groups(
    request: Any,
    limit: int,
    offset: int,
    sort: str,
    descending: bool,
    search: str | None,
    all_projects: bool,
    project_id: str | None,
) -> tuple[list[BackupGroup], bool]:
    buckets: dict[tuple, list[Backup]] = {}
    text = (search or "").strip().lower()
    for record in _all_records(request, all_projects):
        if project_id and record.project_id != project_id:
            continue
        key = group_key(record)
        if text and text not in key[1].lower() and text not in key[2].lower():
            continue
        buckets.setdefault(key, []).append(record)
    groups = [_summarise(key, members) for key, members in buckets.items()]

    def sort_key(g: BackupGroup) -> tuple:
        value = getattr(g, sort)
        # None sorts last in both directions, as nulls_last does in SQL.
        missing = value is None
        return (not missing if descending else missing, value if value is not None else 0)

    groups.sort(key=lambda g: g.key)
    groups.sort(key=sort_key, reverse=descending)
    page = groups[offset : offset + limit + 1]
    return page[:limit], len(page) > limit
