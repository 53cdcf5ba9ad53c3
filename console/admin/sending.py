import logging
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from console.actions import action_reason, action_reason_page, reason_field
from console.history import mend_record
from console.lists import BigTableAdmin, DayFilter, ProviderFilter
from console.timeline import notification_timeline
from notifyproject.masking import recipient_mask, text_mask
from sending.api_keys import api_keys_revoke
from sending.failover import providers_rest
from sending.fragments import sms_fragment_count
from sending.guest_list import GuestListInvalid, guest_list_recipient_normalise
from sending.models import (
    IN_FLIGHT_STATUSES,
    ApiKey,
    EmailReplyTo,
    GuestListRecipient,
    Notification,
    NotificationType,
    ProviderDetails,
    ProviderDetailsHistory,
    SendAttempt,
    Service,
    SmsSender,
    Template,
    TemplateVersion,
)
from sending.phone_numbers import InvalidPhoneNumber, normalise_phone_number
from sending.placeholders import PLACEHOLDER, placeholder_names
from sending.providers import provider_update
from sending.sweeps import notifications_fail, notifications_requeue, notifications_retry_now
from sending.templates import VERSIONED_FIELDS, template_create, template_update

logger = logging.getLogger(__name__)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SentByFilter(ProviderFilter):
    field = "sent_by"


class AttemptDayFilter(DayFilter):
    field = "started_at"

    def index_prefix(self) -> dict:
        # The (provider, outcome, started_at) index.
        providers = list(ProviderDetails.objects.values_list("name", flat=True))
        return {"provider__in": providers, "outcome__in": SendAttempt.Outcome.values}


class WaitingFilter(admin.SimpleListFilter):
    """Of the `created` ones: waiting for a planned retry, or due now (each an index range)."""

    title = "waiting for"
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("retry", "a planned retry"), ("due", "a worker (due now)")]

    def queryset(self, request, queryset):
        current = timezone.now()
        created = queryset.filter(status="created")
        if self.value() == "retry":
            return created.filter(next_attempt_at__gt=current)
        if self.value() == "due":
            return created.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=current))
        return queryset


def recipient_search_terms(term: str) -> list[str]:
    """A recipient as it is stored: a phone number normalised (any common form typed), an
    email address as typed and in lower case."""
    if "@" in term:
        return list({term, term.lower()})
    try:
        return [normalise_phone_number(term).digits]
    except InvalidPhoneNumber:
        return []


@admin.register(Notification)
class NotificationAdmin(BigTableAdmin, ReadOnlyAdmin):
    list_display = (
        "id",
        "notification_type",
        "status",
        "sent_by",
        "to",
        "service",
        "created_at",
        "sent_at",
    )
    list_filter = (
        "status",
        "notification_type",
        SentByFilter,
        WaitingFilter,
        ("service", admin.RelatedFieldListFilter),
        DayFilter,
    )
    # Never searched with LIKE: `get_search_results` matches ids, references and recipients
    # exactly (each an index).
    search_fields = ("=client_reference",)
    search_help_text = (
        "an id, a client reference, a provider reference, or a recipient's full phone number "
        "(any form) or email address, exactly"
    )
    ordering = ("-created_at",)
    list_select_related = ("service",)
    list_deferred = ("content", "subject")  # up to 100 kB a row, never shown in the list
    fields = (
        "id",
        "service",
        "notification_type",
        "status",
        "key_type",
        "to",
        "international",
        "client_reference",
        "subject",
        "content",
        "sent_by",
        "provider_reference",
        "provider_status_code",
        "provider_status_reason",
        "created_at",
        "sent_at",
        "updated_at",
        "retry_count",
        "next_attempt_at",
        "lease_until",
    )
    readonly_fields = fields
    actions = ["retry_now", "replay", "mark_technical_failure"]

    @admin.display(description="recipient")
    def to(self, notification):
        return recipient_mask(notification.recipient)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(client_reference=term) | Q(provider_reference=term)
        if recipients := recipient_search_terms(term):
            match |= Q(recipient__in=recipients)
        try:
            match |= Q(id=uuid.UUID(term))
        except ValueError:
            pass
        return queryset.filter(match), False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        notification = self.get_object(request, object_id)
        extra = {**(extra_context or {})}
        if notification is not None:
            extra["timeline"] = notification_timeline(notification=notification)
            extra["may_reveal"] = request.user.has_perm("console.reveal_recipient")
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def get_urls(self):
        reveal = path(
            "<path:object_id>/reveal/",
            self.admin_site.admin_view(self.reveal_view),
            name="sending_notification_reveal",
        )
        return [reveal, *super().get_urls()]

    def reveal_view(self, request, object_id):
        """The whole recipient, for an operator with the console's reveal permission; logged
        (who and which notification, never the value)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("console.reveal_recipient"):
            raise PermissionDenied
        notification = self.get_object(request, object_id)
        if notification is None:
            raise Http404
        logger.warning(
            "recipient revealed",
            extra={"notification_id": str(notification.id), "user": request.user.get_username()},
        )
        return TemplateResponse(
            request,
            "console/reveal.html",
            {
                **self.admin_site.each_context(request),
                "title": "Recipient",
                "opts": self.opts,
                "original": notification,
                "recipient": notification.recipient,
            },
        )

    @admin.action(
        description="Retry now the selected notifications waiting for a planned retry…",
        permissions=["mend"],
    )
    def retry_now(self, request, queryset):
        waiting = queryset.filter(status="created", next_attempt_at__gt=timezone.now())
        reason = action_reason(request)
        if reason is None:
            return action_reason_page(self, request, title="Retry now", count=waiting.count())
        chosen, rows = _chosen(waiting)
        count = notifications_retry_now(queryset=rows)
        mend_record(request=request, objects=chosen, what="retry now", reason=reason)
        logger.warning(
            "notifications retried now from the admin",
            extra={"count": count, "user": request.user.get_username(), "reason": reason},
        )
        self.message_user(request, f"Queued {count} notification(s) now.", messages.SUCCESS)
        return None

    @admin.action(
        description="Replay selected stuck notifications (created, not held by a worker)…",
        permissions=["mend"],
    )
    def replay(self, request, queryset):
        created = queryset.filter(status="created")
        reason = action_reason(request)
        if reason is None:
            return action_reason_page(self, request, title="Replay", count=created.count())
        chosen, rows = _chosen(created)
        count = notifications_requeue(queryset=rows)
        mend_record(request=request, objects=chosen, what="replay", reason=reason)
        logger.info(
            "notifications replayed from the admin",
            extra={"count": count, "user": request.user.get_username(), "reason": reason},
        )
        planned = rows.filter(status="created", next_attempt_at__gt=timezone.now()).count()
        waiting = (
            f" {planned} wait for a planned retry: use “Retry now” to send them at once."
            if planned
            else ""
        )
        self.message_user(
            request, f"Queued {count} notification(s) again.{waiting}", messages.SUCCESS
        )
        return None

    @admin.action(
        description="Mark selected stuck notifications technical-failure…", permissions=["mend"]
    )
    def mark_technical_failure(self, request, queryset):
        in_flight = queryset.filter(status__in=IN_FLIGHT_STATUSES)
        title = "Mark technical-failure"
        reason = action_reason(request)
        if reason is None:
            return action_reason_page(self, request, title=title, count=in_flight.count())
        user = request.user.get_username()
        chosen, rows = _chosen(in_flight)
        count = notifications_fail(queryset=rows, reason=f"admin:{user}: {reason}")
        mend_record(request=request, objects=chosen, what="marked technical-failure", reason=reason)
        logger.warning(
            "notifications marked technical-failure from the admin",
            extra={"count": count, "user": user, "reason": reason},
        )
        self.message_user(
            request, f"Marked {count} notification(s) technical-failure.", messages.SUCCESS
        )
        return None

    def has_mend_permission(self, request):
        return request.user.has_perm("sending.change_notification")


def _chosen(rows):
    """The notifications an operator's mend acts on, read whole before it changes any (each change
    queues work, and the ORM broker may close the connection under an open cursor), and the same
    rows again as a queryset by id for the service that changes them."""
    chosen = list(rows.order_by().select_related(None).only("id", "notification_type", "status"))
    return chosen, Notification.objects.filter(id__in=[n.id for n in chosen])


@admin.register(SendAttempt)
class SendAttemptAdmin(BigTableAdmin, ReadOnlyAdmin):
    """Every hand-over to a provider: filter by provider and outcome for its recent error rate."""

    list_display = (
        "started_at",
        "provider",
        "outcome",
        "duration_ms",
        "status_code",
        "notification_link",
    )
    list_filter = (ProviderFilter, "outcome", AttemptDayFilter)
    ordering = ("-id",)  # the order they were made in, by primary key: no other index needed
    raw_id_fields = ("notification",)
    fields = (
        "notification",
        "provider",
        "started_at",
        "duration_ms",
        "outcome",
        "status_code",
        "masked_error",
    )
    readonly_fields = fields

    @admin.display(description="error (recipient masked)")
    def masked_error(self, attempt):
        """A provider's error may echo the number back (the client masks the echo it knows)."""
        recipient = Notification.objects.filter(id=attempt.notification_id)
        return text_mask(attempt.error, recipients=recipient.values_list("recipient", flat=True))

    @admin.display(description="notification")
    def notification_link(self, attempt):
        url = reverse("admin:sending_notification_change", args=[attempt.notification_id])
        return format_html('<a href="{}">{}</a>', url, attempt.notification_id)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("name", "key_type", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class SmsSenderInline(admin.TabularInline):
    model = SmsSender
    fields = ("sms_sender", "is_default", "id")
    readonly_fields = ("id",)
    extra = 0


class EmailReplyToInline(admin.TabularInline):
    model = EmailReplyTo
    fields = ("email_address", "is_default", "id")
    readonly_fields = ("id",)
    extra = 0


class GuestListForm(forms.ModelForm):
    """A phone number or an email address, kept as `sending.guest_list` keeps it."""

    class Meta:
        model = GuestListRecipient
        fields = ("recipient",)

    def clean_recipient(self):
        try:
            recipient_type, value = guest_list_recipient_normalise(self.cleaned_data["recipient"])
        except GuestListInvalid as err:
            raise forms.ValidationError(str(err)) from None
        self.instance.recipient_type = recipient_type
        return value


class GuestListInline(admin.TabularInline):
    """Who the service's team keys may send to."""

    model = GuestListRecipient
    form = GuestListForm
    fields = ("recipient", "recipient_type", "created_at")
    readonly_fields = ("recipient_type", "created_at")
    extra = 0


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "id", "created_at")
    search_fields = ("name",)
    inlines = [ApiKeyInline, GuestListInline, SmsSenderInline, EmailReplyToInline]


class ApiKeyCreateForm(forms.ModelForm):
    key_name = forms.CharField(
        label="name", required=False, help_text="the key's name (default: the service's)"
    )

    class Meta:
        model = ApiKey
        fields = ("service", "key_type")


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Keys are made here (the key shown once, on the page after) and revoked, never edited."""

    list_display = (
        "name",
        "key_type",
        "prefix",
        "service",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("key_type", "revoked_at")
    actions = ["revoke"]
    form = ApiKeyCreateForm
    readonly_fields = (
        "service",
        "name",
        "key_type",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ("service", "key_name", "key_type")

    def has_add_permission(self, request):
        return request.user.has_perm("sending.add_apikey")

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, key_string = ApiKey.issue(
            obj.service, name=form.cleaned_data["key_name"], key_type=obj.key_type
        )
        obj.__dict__.update({k: v for k, v in key.__dict__.items() if k != "_state"})
        obj._state.adding = False
        obj._key_string = key_string  # shown once by `response_add`, never stored
        logger.info(
            "API key made in the admin",
            extra={
                "service_id": str(key.service_id),
                "key_type": key.key_type,
                "api_key_id": key.pk,
                "user": request.user.get_username(),
            },
        )

    def response_add(self, request, obj, post_url_continue=None):
        """The key, on this page alone: not in a message (kept in a cookie or the session)."""
        return TemplateResponse(
            request,
            "console/api_key_created.html",
            {
                **self.admin_site.each_context(request),
                "title": "New API key",
                "opts": self.opts,
                "original": obj,
                "key_string": obj._key_string,
            },
        )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        count = api_keys_revoke(keys=queryset)
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("sending.change_apikey")


HISTORY_SHOWN = 50


class ProviderForm(forms.ModelForm):
    reason = reason_field(
        required=False,
        help_text="why: required to change the priority or the active flag (kept in the history)",
    )

    class Meta:
        model = ProviderDetails
        fields = ("priority", "active")

    def clean(self):
        cleaned = super().clean()
        if {"priority", "active"} & set(self.changed_data) and not cleaned.get("reason"):
            self.add_error("reason", "Say why the priority or the active flag changes.")
        return cleaned


@admin.register(ProviderDetails)
class ProviderDetailsAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = (
        "display_name",
        "notification_type",
        "priority",
        "active",
        "last_change",
        "updated_at",
    )
    fields = (
        "name",
        "display_name",
        "notification_type",
        "priority",
        "active",
        "supports_international",
        "reason",
    )
    readonly_fields = ("name", "display_name", "notification_type", "supports_international")
    actions = ["rest"]

    @admin.display(description="last change")
    def last_change(self, provider):
        change = provider.history.first()
        return f"{change.changed_by}: {change.reason}" if change else "—"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # `get_object` reads the id from the URL as the admin does (None for one that is not a
        # provider's, "x" too): Django then answers it with its "doesn't exist" redirect.
        provider = self.get_object(request, unquote(object_id))
        history = ProviderDetailsHistory.objects.filter(provider=provider)[:HISTORY_SHOWN]
        extra = {**(extra_context or {}), "history": history, "history_shown": HISTORY_SHOWN}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def construct_change_message(self, request, form, formsets, add=False):
        """The provider's history line in the admin's own history too: what moved, and why."""
        moved = [f"{name} → {form.cleaned_data[name]}" for name in ("priority", "active")
                 if name in form.changed_data]  # fmt: skip
        if not moved:
            return super().construct_change_message(request, form, formsets, add)
        return f"{', '.join(moved)}: {form.cleaned_data.get('reason', '')}"

    def save_model(self, request, obj, form, change):
        if not {"priority", "active"} & set(form.changed_data):
            return
        provider_update(
            provider=obj,
            priority=obj.priority,
            active=obj.active,
            changed_by=f"admin:{request.user.get_username()}",
            reason=form.cleaned_data["reason"],
        )

    @admin.action(description="Return the SMS providers to the resting split…")
    def rest(self, request, queryset):
        reason = action_reason(request)
        if reason is None:
            title = "Return to the resting split"
            return action_reason_page(self, request, title=title, count=queryset.count())
        moved = providers_rest(changed_by=f"admin:{request.user.get_username()}", reason=reason)
        mend_record(
            request=request,
            objects=ProviderDetails.objects.filter(name__in=moved),
            what="returned to the resting split",
            reason=reason,
        )
        self.message_user(
            request,
            f"Moved {', '.join(moved)} to the resting split." if moved else "Already resting.",
            messages.SUCCESS,
        )
        return None


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("version", "name", "subject", "body", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    """Every save that changes the name, subject or body makes a new version (sending.templates).
    Templates are never deleted: notifications name the version they were made from."""

    list_display = (
        "name",
        "id",
        "service",
        "template_type",
        "version",
        "parts",
        "created_at",
        "updated_at",
    )
    list_filter = ("template_type",)
    search_fields = ("name", "service__name")
    list_select_related = ("service",)
    fields = (
        "service",
        "template_type",
        "name",
        "subject",
        "body",
        "preview",
        "id",
        "version",
        "created_at",
        "updated_at",
        "created_by",
    )
    readonly_fields = ("preview", "id", "version", "created_at", "updated_at", "created_by")
    inlines = [TemplateVersionInline]

    def get_search_results(self, request, queryset, search_term):
        found, duplicates = super().get_search_results(request, queryset, search_term)
        try:
            return found | queryset.filter(id=uuid.UUID(search_term.strip())), duplicates
        except ValueError:
            return found, duplicates

    @admin.display(description="SMS parts (before personalisation)")
    def parts(self, obj: Template):
        return sms_fragment_count(obj.body) if obj.template_type == NotificationType.SMS else "—"

    def get_readonly_fields(self, request, obj=None):
        # A template's service and type stay what they were made with.
        fixed = ("service", "template_type") if obj is not None else ()
        return (*fixed, *self.readonly_fields)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="preview")
    def preview(self, obj: Template) -> str:
        if obj is None or obj.pk is None:
            return "Save the template to see it here."
        names = placeholder_names(obj.subject, obj.body)
        body = format_html_join("", "{}", ((part,) for part in _marked(obj.body)))
        parts = [
            format_html(
                '<div style="white-space: pre-wrap; max-width: 40em; '
                'border: 1px solid #ccc; padding: .5em">{}</div>',
                body,
            )
        ]
        if obj.template_type == NotificationType.EMAIL:
            subject = format_html_join("", "{}", ((part,) for part in _marked(obj.subject)))
            parts.insert(0, format_html("<p><strong>Subject:</strong> {}</p>", subject))
        else:
            parts.append(format_html("<p>{} characters before personalisation</p>", len(obj.body)))
        parts.append(format_html("<p>Placeholders: {}</p>", ", ".join(names) or "none"))
        return format_html_join("", "{}", ((part,) for part in parts))

    def save_model(self, request, obj, form, change):
        who = f"admin:{request.user.get_username()}"
        if change:
            changes = {
                name: form.cleaned_data[name]
                for name in VERSIONED_FIELDS
                if name in form.cleaned_data
            }
            saved = template_update(template=obj, changed_by=who, **changes)
        else:
            saved = template_create(
                service=obj.service,
                template_type=obj.template_type,
                name=obj.name,
                subject=obj.subject,
                body=obj.body,
                created_by=who,
            )
        # The admin goes on with `obj` (messages, redirect, inlines): make it the stored row.
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if k != "_state"})
        obj._state.adding = False


def _marked(text: str):
    """The text's pieces, each placeholder highlighted (escaped by format_html_join)."""
    last = 0
    for match in PLACEHOLDER.finditer(text):
        yield text[last : match.start()]
        yield format_html("<mark>{}</mark>", match.group(0))
        last = match.end()
    yield text[last:]
