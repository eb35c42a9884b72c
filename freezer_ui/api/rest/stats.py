"""``/api/freezer_ui/stats/…``: the numbers behind the Overview charts, as JSON."""

from django.views import generic
from openstack_dashboard.api.rest import urls
from openstack_dashboard.api.rest import utils as rest_utils

from freezer_ui.api import stats
from freezer_ui.api.exceptions import FreezerAPIError


def _days(request) -> int:
    try:
        return int(request.GET.get("days", 30))
    except (TypeError, ValueError):
        raise rest_utils.AjaxError(400, "days must be a whole number") from None


@urls.register
class ProjectUsage(generic.View):
    """The caller's project only: ``stats.project_usage`` (stored, new, dedup, runs per day)."""

    url_regex = r"freezer_ui/stats/usage/$"

    @rest_utils.ajax()
    def get(self, request):
        days = _days(request)
        try:
            return stats.project_usage(request, days=days)
        except ValueError as error:
            raise rest_utils.AjaxError(400, str(error)) from None
        except FreezerAPIError as error:
            # The backup service's own verdict (403, 404, 503 ...), not a 500.
            raise rest_utils.AjaxError(error.status_code or 502, str(error)) from None


@urls.register
class ProjectTotals(generic.View):
    """Every project's totals; the admin role is checked by ``stats.project_totals``."""

    url_regex = r"freezer_ui/stats/projects/$"

    @rest_utils.ajax()
    def get(self, request):
        try:
            return {"items": stats.project_totals(request)}
        except FreezerAPIError as error:
            raise rest_utils.AjaxError(error.status_code or 502, str(error)) from None
