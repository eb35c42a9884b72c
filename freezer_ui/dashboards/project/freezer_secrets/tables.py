from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from horizon import tables

from freezer_ui.api import secrets as api_secrets
from freezer_ui.dashboards import utils
from freezer_ui.dashboards.project.freezer_secrets import forms as secret_forms

KIND_LABELS = dict(secret_forms.KIND_CHOICES)


class CreateSecret(tables.LinkAction):
    name = "create"
    verbose_name = _("Create Key")
    url = "horizon:project:freezer_secrets:create"
    classes = ("ajax-modal",)
    icon = "plus"


class ReplaceValue(tables.LinkAction):
    name = "update"
    verbose_name = _("Replace Value")
    url = "horizon:project:freezer_secrets:update"
    classes = ("ajax-modal",)
    icon = "pencil"


class DeleteSecret(tables.DeleteAction):
    help_text = _(
        "Backups encrypted with a deleted passphrase cannot be restored unless you have "
        "another copy of it."
    )

    @staticmethod
    def action_present(count):
        return ngettext_lazy("Delete Key", "Delete Keys", count)

    @staticmethod
    def action_past(count):
        return ngettext_lazy("Deleted Key", "Deleted Keys", count)

    def delete(self, request, obj_id):
        api_secrets.secret_delete(request, obj_id)


def kind(secret):
    return KIND_LABELS.get(secret.kind, secret.kind)


def updated(secret):
    return utils.format_datetime(secret.updated_at)


class SecretsTable(tables.DataTable):
    name = tables.Column("name", verbose_name=_("Name"))
    kind = tables.Column(kind, verbose_name=_("Kind"))
    description = tables.Column("description", verbose_name=_("Description"), empty_value="-")
    updated = tables.Column(updated, verbose_name=_("Value set"))

    def get_object_id(self, datum):
        return datum.name

    def get_object_display(self, datum):
        return datum.name

    class Meta:
        name = "secrets"
        verbose_name = _("Keys")
        table_actions = (CreateSecret, DeleteSecret)
        row_actions = (ReplaceValue, DeleteSecret)
