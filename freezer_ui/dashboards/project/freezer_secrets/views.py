from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from horizon import exceptions, forms, tables
from horizon.utils import memoized

from freezer_ui import conf
from freezer_ui.api import secrets as api_secrets
from freezer_ui.dashboards.project.freezer_secrets import forms as secret_forms
from freezer_ui.dashboards.project.freezer_secrets import tables as secret_tables

# Django's error reports (mail_admins, the debug page) show POST data; these names are masked.
_VALUE_FIELDS = sensitive_post_parameters("password", "confirm_password")
INDEX_URL = reverse_lazy("horizon:project:freezer_secrets:index")


class IndexView(tables.DataTableView):
    table_class = secret_tables.SecretsTable
    template_name = "freezer_ui/project/freezer_secrets/index.html"
    page_title = _("Keys")
    api_error = False

    def get_data(self):
        try:
            return api_secrets.secret_list(self.request)
        except Exception:
            self.api_error = True
            exceptions.handle(self.request, _("Unable to retrieve keys."))
            return []

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["api_error"] = self.api_error
        context["remote_mode"] = conf.get("FREEZER_UI_API_MODE") == "remote"
        return context


@method_decorator(_VALUE_FIELDS, name="dispatch")
class CreateView(forms.ModalFormView):
    form_class = secret_forms.CreateSecretForm
    form_id = "create_secret_form"
    modal_id = "create_secret_modal"
    template_name = "freezer_ui/project/freezer_secrets/create.html"
    page_title = _("Create Key")
    submit_label = _("Create Key")
    submit_url = reverse_lazy("horizon:project:freezer_secrets:create")
    success_url = INDEX_URL


@method_decorator(_VALUE_FIELDS, name="dispatch")
class UpdateView(forms.ModalFormView):
    form_class = secret_forms.UpdateSecretForm
    form_id = "update_secret_form"
    modal_id = "update_secret_modal"
    template_name = "freezer_ui/project/freezer_secrets/update.html"
    page_title = _("Replace Key Value")
    submit_label = _("Replace Value")
    success_url = INDEX_URL

    @memoized.memoized_method
    def get_secret(self):
        try:
            return api_secrets.secret_get(self.request, self.kwargs["name"])
        except Exception:
            exceptions.handle(self.request, _("Unable to retrieve the key."), redirect=INDEX_URL)

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["secret_name"] = self.get_secret().name
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["secret"] = self.get_secret()
        context["submit_url"] = reverse(
            "horizon:project:freezer_secrets:update", args=(self.kwargs["name"],)
        )
        return context
