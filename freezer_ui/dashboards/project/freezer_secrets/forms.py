"""Create a key, replace its value.  Values are write-only: typed twice, never shown again."""

from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables
from horizon import exceptions, forms, messages

from freezer_ui.api import exceptions as api_exceptions
from freezer_ui.api import secrets as api_secrets

KIND_CHOICES = (
    ("passphrase", _("Repository passphrase")),
    ("storage_credential", _("Storage credential")),
)

# API error field -> form field.  The value fields are called "password" and
# "confirm_password" on purpose: Horizon's operation log masks those names by default
# (OPERATION_LOG_OPTIONS["mask_fields"]), so a POST of this form is never logged in clear.
ERROR_FIELDS = {
    "name": "name",
    "kind": "kind",
    "description": "description",
    "value": "password",
}


def map_api_errors(form, error):
    for field, message in (getattr(error, "errors", None) or {"": str(error)}).items():
        target = ERROR_FIELDS.get(field)
        form.add_error(target if target in form.fields else None, message)


class ValueForm(forms.SelfHandlingForm):
    """The value, typed twice.  ``render_value=False``: a re-displayed form comes back empty.

    ``clean`` and ``handle`` are ``@sensitive_variables()``: Django's error reports (the debug
    page, mails to admins) then mask every local variable of these frames and of every frame
    below them (the API and the store), where the value travels under other names.
    """

    password = forms.CharField(
        label=_("Value"),
        # Kept exactly as typed: a passphrase may begin or end with a space.
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Stored encrypted; nobody can read it back here, not even you."),
    )
    confirm_password = forms.CharField(
        label=_("Confirm value"),
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    @sensitive_variables()
    def clean(self):
        data = super().clean()
        if "password" in data and data["password"] != data.get("confirm_password"):
            self.add_error("confirm_password", _("The two values do not match."))
        return data


class CreateSecretForm(ValueForm):
    name = forms.RegexField(
        label=_("Name"),
        max_length=255,
        regex=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        error_messages={
            "invalid": _(
                "Letters, digits, '.', '_' and '-' only, starting with a letter or a digit."
            )
        },
        help_text=_('What job actions name in "passphrase_ref"; it cannot be changed later.'),
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=KIND_CHOICES)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=1024,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    field_order = ("name", "kind", "description", "password", "confirm_password")

    @sensitive_variables()
    def handle(self, request, data):
        try:
            api_secrets.secret_create(
                request, data["name"], data["password"], data["kind"], data["description"]
            )
        except api_exceptions.ValidationError as error:
            map_api_errors(self, error)
            return False
        except Exception:
            exceptions.handle(request, _("Unable to create the key."))
            return False
        messages.success(request, _('Created key "%s".') % data["name"])
        return True


class UpdateSecretForm(ValueForm):
    def __init__(self, request, *args, **kwargs):
        # The key's name, from the URL: the project comes from the request, never the form.
        self.secret_name = kwargs.pop("secret_name")
        super().__init__(request, *args, **kwargs)

    @sensitive_variables()
    def handle(self, request, data):
        try:
            api_secrets.secret_update(request, self.secret_name, data["password"])
        except api_exceptions.ValidationError as error:
            map_api_errors(self, error)
            return False
        except Exception:
            exceptions.handle(request, _("Unable to replace the value of the key."))
            return False
        messages.success(request, _('Replaced the value of key "%s".') % self.secret_name)
        return True
