from django.urls import re_path

from freezer_ui.dashboards.project.freezer_restore import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    # ?backup_id=<id> preselects the backup (the Backups panel links here).
    re_path(r"^wizard/$", views.WizardView.as_view(), name="wizard"),
    re_path(r"^resolve/(?P<backup_id>[^/]+)/$", views.ResolveView.as_view(), name="resolve"),
    re_path(r"^jobs/(?P<job_id>[^/]+)/$", views.ProgressView.as_view(), name="progress"),
    re_path(
        r"^jobs/(?P<job_id>[^/]+)/state/$",
        views.ProgressStateView.as_view(),
        name="progress_state",
    ),
]
