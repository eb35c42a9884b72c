from django.urls import re_path

from freezer_ui.dashboards.project.freezer_backups import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
    re_path(r"^(?P<backup_id>[^/]+)/$", views.DetailView.as_view(), name="detail"),
]
