"""Admin actions that change things ask why first: an intermediate page with a reason."""

from django import forms
from django.contrib.admin import helpers
from django.template.response import TemplateResponse


def reason_field(*, required: bool = True, help_text: str = "recorded with the change"):
    """Why an operator changes something: kept with the change (history, status reason, log)."""
    return forms.CharField(
        max_length=200,
        required=required,
        widget=forms.TextInput(attrs={"size": 80}),
        help_text=help_text,
    )


class ReasonForm(forms.Form):
    reason = reason_field()


def action_reason(request) -> str | None:
    """The reason the operator gave on the confirmation page, or None: then the caller
    returns `action_reason_page(...)` to ask (again)."""
    if "apply" not in request.POST:
        return None
    form = ReasonForm(request.POST)
    return form.cleaned_data["reason"] if form.is_valid() else None


def action_reason_page(modeladmin, request, *, title: str, count: int) -> TemplateResponse:
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    return TemplateResponse(
        request,
        "console/action_reason.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "opts": modeladmin.model._meta,
            "form": form,
            "count": count,
            "action": request.POST["action"],
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )
