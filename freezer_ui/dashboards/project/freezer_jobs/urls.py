from django.urls import re_path

from freezer_ui.dashboards.project.freezer_jobs import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^create/$", views.CreateView.as_view(), name="create"),
    re_path(r"^(?P<job_id>[^/]+)/$", views.DetailView.as_view(), name="detail"),
    re_path(r"^(?P<job_id>[^/]+)/update/$", views.UpdateView.as_view(), name="update"),
    re_path(r"^(?P<job_id>[^/]+)/clone/$", views.CloneView.as_view(), name="clone"),
    re_path(
        r"^(?P<job_id>[^/]+)/runs/(?P<run_id>[^/]+)/$",
        views.RunDetailView.as_view(),
        name="run_detail",
    ),
]
