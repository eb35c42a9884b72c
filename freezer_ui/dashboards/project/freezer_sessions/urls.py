from django.urls import re_path

from freezer_ui.dashboards.project.freezer_sessions import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^create/$", views.CreateView.as_view(), name="create"),
    re_path(r"^(?P<session_id>[^/]+)/add_job/$", views.AddJobView.as_view(), name="add_job"),
    re_path(
        r"^(?P<session_id>[^/]+)/remove_job/$", views.RemoveJobView.as_view(), name="remove_job"
    ),
]
