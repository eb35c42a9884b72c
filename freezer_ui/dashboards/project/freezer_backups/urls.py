from django.urls import re_path

from freezer_ui.dashboards.project.freezer_backups import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    # A group is named by one of its records: fetched project-scoped, so a URL cannot reach
    # another project's group.
    re_path(r"^group/(?P<backup_id>[^/]+)/$", views.GroupView.as_view(), name="group"),
    re_path(r"^(?P<backup_id>[^/]+)/$", views.DetailView.as_view(), name="detail"),
    # ?path=<file>
    re_path(r"^(?P<backup_id>[^/]+)/file/$", views.FileDownloadView.as_view(), name="file"),
    # ?path=<dir> (optional: the whole generation)
    re_path(r"^(?P<backup_id>[^/]+)/tar/$", views.TarDownloadView.as_view(), name="tar"),
    re_path(r"^(?P<backup_id>[^/]+)/versions/$", views.VersionsView.as_view(), name="versions"),
]
