from django.urls import re_path

from freezer_ui.dashboards.admin.freezer_overview import views

urlpatterns = [
    re_path(r"^$", views.IndexView.as_view(), name="index"),
]
