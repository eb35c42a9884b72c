"""The generation browser's lazy tree, search and versions, as JSON.

Each view calls :mod:`freezer_ui.api.browse`, which checks the project, the repository and the
generation's label; errors come back as a JSON string with the matching HTTP status (another
project's backup ID is a 404, a refused path a 400).  Names from backups are returned as data
and only ever inserted into pages as text by ``browse.js``.
"""

import json

from django.views import generic
from openstack_dashboard.api.rest import urls, utils

from freezer_ui.api import browse
from freezer_ui.api.exceptions import FreezerAPIError

_PREFIX = r"^freezer_ui/backups/(?P<backup_id>[^/]+)/"


class EscapingEncoder(json.JSONEncoder):
    """JSON with ``<``, ``>`` and ``&`` as ``\\u`` escapes: a file name holding markup stays inert
    even if a response were ever rendered as HTML.  Those characters only occur inside JSON
    strings, where the escapes mean the same characters."""

    def encode(self, o):
        text = super().encode(o)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _int(request, name, default, low, high):
    try:
        value = int(request.GET.get(name, default))
    except (TypeError, ValueError):
        value = default
    return min(max(value, low), high)


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except FreezerAPIError as exc:
        # NotFound (also another project's ID) -> 404, BadPath -> 400, Refused -> 403 ...
        return utils.JSONResponse(str(exc), exc.status_code or 500, json_encoder=EscapingEncoder)


@urls.register
class Directory(generic.View):
    """``GET ?path=&offset=&limit=`` -> ``{"items": [entries], "has_more": bool}``."""

    url_regex = _PREFIX + r"dir/$"

    @utils.ajax(json_encoder=EscapingEncoder)
    def get(self, request, backup_id):
        result = _call(
            browse.list_dir,
            request,
            backup_id,
            request.GET.get("path", ""),
            offset=_int(request, "offset", 0, 0, 10**9),
            limit=_int(request, "limit", 500, 1, 1000),
        )
        if isinstance(result, utils.JSONResponse):
            return result
        entries, more = result
        return {"items": entries, "has_more": more}


@urls.register
class Search(generic.View):
    """``GET ?q=&limit=`` -> ``{"items": [entries]}``."""

    url_regex = _PREFIX + r"search/$"

    @utils.ajax(json_encoder=EscapingEncoder)
    def get(self, request, backup_id):
        result = _call(
            browse.search,
            request,
            backup_id,
            request.GET.get("q", ""),
            limit=_int(request, "limit", 200, 1, 1000),
        )
        if isinstance(result, utils.JSONResponse):
            return result
        return {"items": result}


@urls.register
class Versions(generic.View):
    """``GET ?path=`` -> ``{"items": [versions]}`` (see browse.file_versions)."""

    url_regex = _PREFIX + r"versions/$"

    @utils.ajax(json_encoder=EscapingEncoder)
    def get(self, request, backup_id):
        result = _call(browse.file_versions, request, backup_id, request.GET.get("path", ""))
        if isinstance(result, utils.JSONResponse):
            return result
        return {"items": result}
