from django.urls import re_path

from freezer_ui.dashboards.project.freezer_secrets import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^create/$", views.CreateView.as_view(), name="create"),
    re_path(r"^(?P<name>[^/]+)/update/$", views.UpdateView.as_view(), name="update"),
]
