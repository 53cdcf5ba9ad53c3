import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from console.actions import action_reason, action_reason_page
from console.history import mend_record
from notifyproject.masking import text_mask
from sending.admin import NotificationAdmin, ReadOnlyAdmin
from sending.models import Notification
from webhooks.guard import CallbackUrlRefused, callback_url_check
from webhooks.models import (
    CallbackAttempt,
    CallbackEvent,
    CallbackState,
    ServiceCallback,
    ServiceInboundCallback,
)
from webhooks.services import (
    BearerTokenRefused,
    bearer_token_check,
    service_callback_end_roll,
    service_callback_roll_secret,
    service_callback_set,
)
from webhooks.sweeps import callback_events_replay


class ServiceCallbackForm(forms.ModelForm):
    """The bearer token is write-only: never shown, left as it is when the field is empty."""

    bearer_token = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,  # a space is refused, not quietly taken off
        help_text="never shown again once saved; leave empty to keep the current one",
    )

    class Meta:
        model = ServiceCallback
        fields = ("service", "url")

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            callback_url_check(url)
        except CallbackUrlRefused as err:
            raise forms.ValidationError(str(err)) from None
        return url

    def clean_bearer_token(self):
        token = self.cleaned_data["bearer_token"]
        if token:
            try:
                bearer_token_check(token)
            except BearerTokenRefused as err:
                raise forms.ValidationError(str(err)) from None
        return token

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not cleaned.get("bearer_token"):
            self.add_error("bearer_token", "a new callback needs a bearer token")
        return cleaned


@admin.register(ServiceCallback)
class ServiceCallbackAdmin(admin.ModelAdmin):
    form = ServiceCallbackForm
    list_display = ("service", "url", "rolling", "created_at", "updated_at")
    readonly_fields = ("secret_rolled_at", "rolling", "created_at", "updated_at")
    search_fields = ("service__name", "url")
    list_select_related = ("service",)
    actions = ["roll_secret", "end_roll"]

    def get_readonly_fields(self, request, obj=None):
        # A callback stays with its service; another service gets its own.
        return (*self.readonly_fields, "service") if obj else self.readonly_fields

    @admin.display(boolean=True, description="previous secret still signing")
    def rolling(self, obj: ServiceCallback) -> bool:
        return bool(obj.previous_signing_secret_encrypted)

    def save_model(self, request, obj, form, change):
        token = form.cleaned_data.get("bearer_token") or obj.bearer_token
        saved, new_secret = service_callback_set(
            service=obj.service, url=obj.url, bearer_token=token, model=type(obj)
        )
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at
        if new_secret:
            self.message_user(
                request,
                f"Signing secret for {obj.service} (shown this once; give it to the service): "
                f"{new_secret}",
                messages.WARNING,
            )

    @admin.action(description="Roll the signing secret (old and new both sign until ended)")
    def roll_secret(self, request, queryset):
        for callback in queryset.select_related("service"):
            secret = service_callback_roll_secret(callback=callback)
            self.message_user(
                request,
                f"New signing secret for {callback.service} (shown this once): {secret}",
                messages.WARNING,
            )

    @admin.action(description="End the roll: stop signing with the previous secret")
    def end_roll(self, request, queryset):
        for callback in queryset:
            service_callback_end_roll(callback=callback)
        self.message_user(request, f"Roll ended for {queryset.count()} callback(s).")


class ServiceInboundCallbackForm(ServiceCallbackForm):
    class Meta(ServiceCallbackForm.Meta):
        model = ServiceInboundCallback


@admin.register(ServiceInboundCallback)
class ServiceInboundCallbackAdmin(ServiceCallbackAdmin):
    """Where each service's received texts are sent: set, rolled and shown as status callbacks."""

    form = ServiceInboundCallbackForm


class CallbackAttemptInline(admin.TabularInline):
    model = CallbackAttempt
    fields = ("started_at", "status_code", "outcome", "duration_ms", "masked_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0

    @admin.display(description="error")
    def masked_error(self, attempt):
        return text_mask(attempt.error)


class NotificationCallbackAttemptInline(CallbackAttemptInline):
    """The callback attempts under a notification, beside its send attempts."""

    fk_name = "notification"
    fields = ("started_at", "event", "status_code", "outcome", "duration_ms", "masked_error")
    readonly_fields = fields
    verbose_name_plural = "status callback attempts"


# Under each notification in the admin, after its send attempts (kept here, with the model).
NotificationAdmin.inlines = [*NotificationAdmin.inlines, NotificationCallbackAttemptInline]


@admin.register(CallbackEvent)
class CallbackEventAdmin(ReadOnlyAdmin):
    inlines = [CallbackAttemptInline]
    list_display = (
        "created_at",
        "service",
        "kind",
        "state",
        "attempts",
        "next_attempt_at",
        "notification",
        "received_text",
    )
    list_filter = ("state", "kind", "service", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("=id", "=notification__id", "=received_text__id")
    list_select_related = ("service",)
    raw_id_fields = ("notification", "complaint", "received_text")
    fields = (
        "id",
        "service",
        "notification",
        "complaint",
        "received_text",
        "kind",
        "masked_payload",
        "state",
        "attempts",
        "next_attempt_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    show_full_result_count = False
    actions = ["send_again"]

    @admin.display(description="payload (recipient masked)")
    def masked_payload(self, event):
        return format_html("<pre>{}</pre>", text_mask(json.dumps(event.payload)))

    @admin.action(description="Send again (given up or delivered)…", permissions=["replay"])
    def send_again(self, request, queryset):
        reason = action_reason(request)
        if reason is None:
            return action_reason_page(self, request, title="Send again", count=queryset.count())
        events = list(queryset.select_related(None).only("id", "kind", "state", "notification"))
        count = callback_events_replay(
            ids=[event.id for event in events],
            states=(CallbackState.GIVEN_UP, CallbackState.DELIVERED),
        )
        notifications = Notification.objects.filter(
            id__in={event.notification_id for event in events}
        ).only("id", "notification_type", "status")
        for objects in (events, notifications):
            mend_record(request=request, objects=objects, what="callback sent again", reason=reason)
        self.message_user(request, f"Queued {count} callback(s) again.", messages.SUCCESS)
        return None

    def has_replay_permission(self, request):
        return request.user.has_perm("webhooks.change_callbackevent")
