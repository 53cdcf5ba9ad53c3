import re
import uuid

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from console.actions import action_reason, action_reason_page
from console.admin.sending import ReadOnlyAdmin
from console.history import mend_record
from console.lists import BigTableAdmin, DayFilter
from notifyproject.masking import recipient_mask, text_mask
from receipts.inbound_numbers import (
    InboundNumberTaken,
    inbound_number_check,
    inbound_number_set,
)
from receipts.inbox import receipts_drain
from receipts.models import Complaint, InboundNumber, Receipt, ReceiptState, ReceivedText
from receipts.services import UNKNOWN_NOTIFICATION
from sending.models import Notification

# A notification id anywhere in a receipt's body: a rejected receipt has no parsed reference,
# but its body often still names the notification it was about.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# What became of a receipt, as an operator asks it: each a filter on the stored state and
# the outcome text the inbox drain wrote.
OUTCOMES = {
    "processed": (
        "processed: changed the status",
        {"state": "processed", "outcome__startswith": "now "},
    ),
    "duplicate": (
        "duplicate or late: changed nothing",
        {"state": "processed", "outcome__startswith": "unchanged"},
    ),
    "unknown": ("unknown notification", {"state": "processed", "outcome": UNKNOWN_NOTIFICATION}),
    "ignored": (
        "ignored: not this provider's to report",
        {"state": ReceiptState.IGNORED},
    ),
    "rejected": ("rejected (answered 400)", {"state": ReceiptState.REJECTED}),
    "failed": ("failed while processing", {"state": ReceiptState.FAILED}),
    "given-up": ("given up: failed every attempt", {"state": ReceiptState.GIVEN_UP}),
    "received": ("not processed yet", {"state": ReceiptState.RECEIVED}),
}


def receipt_outcome_kind(receipt: Receipt) -> str:
    if receipt.state != ReceiptState.PROCESSED:
        return receipt.get_state_display()
    if receipt.outcome.startswith("now "):
        return "processed"
    if receipt.outcome.startswith("unchanged"):
        return "duplicate"
    if receipt.outcome == UNKNOWN_NOTIFICATION:
        return "unknown notification"
    return "processed"


class OutcomeFilter(admin.SimpleListFilter):
    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in OUTCOMES.items()]

    def queryset(self, request, queryset):
        if self.value() in OUTCOMES:
            return queryset.filter(**OUTCOMES[self.value()][1])
        return queryset


class ReceivedDayFilter(DayFilter):
    field = "received_at"

    def index_prefix(self) -> dict:
        return {"state__in": ReceiptState.values}  # the (state, received_at) index


@admin.register(Receipt)
class ReceiptAdmin(BigTableAdmin, ReadOnlyAdmin):
    list_display = ("id", "provider", "outcome_kind", "received_at", "reference", "outcome")
    list_filter = ("provider", OutcomeFilter, ReceivedDayFilter)
    search_fields = ("=reference",)
    search_help_text = "a notification id, or an SES message id, exactly"
    ordering = ("-id",)  # the order they came in, by primary key: no other index needed
    list_deferred = ("body",)
    fields = (
        "id",
        "provider",
        "state",
        "outcome",
        "reference",
        "notification",
        "received_at",
        "reported_at",
        "processed_at",
        "attempts",
        "content_type",
        "masked_body",
    )
    readonly_fields = fields
    actions = ["replay"]

    @admin.display(description="notification")
    def notification(self, receipt):
        """The notification the receipt names (by its reference, else by an id in its body)."""
        candidates = [receipt.reference, *_UUID.findall(receipt.body or "")]
        ids = []
        for candidate in candidates:
            try:
                ids.append(uuid.UUID(candidate))
            except (TypeError, ValueError):
                continue
        found = Notification.objects.filter(id__in=ids).values_list("id", flat=True).first()
        if found is None:
            return "—"
        url = reverse("admin:sending_notification_change", args=[found])
        return format_html('<a href="{}" id="receipt-notification">{}</a>', url, found)

    @admin.display(description="outcome kind")
    def outcome_kind(self, receipt):
        return receipt_outcome_kind(receipt)

    @admin.display(description="body (recipients and senders masked)")
    def masked_body(self, receipt):
        return text_mask(receipt.body)

    def get_search_results(self, request, queryset, search_term):
        # A notification id as it is stored, whatever case or braces it was typed with.
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(reference=str(uuid.UUID(term))), False
        except ValueError:
            return queryset.filter(reference=term), False

    @admin.action(
        description="Replay selected receipts (not processed yet, failed, rejected or given up)…",
        permissions=["replay"],
    )
    def replay(self, request, queryset):
        reason = action_reason(request)
        if reason is None:
            return action_reason_page(self, request, title="Replay", count=queryset.count())
        replayable = queryset.defer(None).filter(
            state__in=[
                ReceiptState.RECEIVED,
                ReceiptState.FAILED,
                ReceiptState.REJECTED,
                ReceiptState.GIVEN_UP,
            ]
        )
        chosen = list(replayable)
        # The inbox drain itself, over the receipts chosen.
        states = receipts_drain(receipts=replayable)
        mend_record(request=request, objects=chosen, what="replayed", reason=reason)
        self.message_user(
            request,
            f"Replayed {sum(states.values())} receipt(s): "
            f"{states[ReceiptState.PROCESSED]} processed.",
            messages.SUCCESS,
        )
        return None

    def has_replay_permission(self, request):
        return request.user.has_perm("callbacks.change_receipt")


@admin.register(Complaint)
class ComplaintAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "notification", "complaint_type", "provider_reference")
    list_filter = ("complaint_type", "created_at")
    search_fields = ("provider_reference", "feedback_id")
    raw_id_fields = ("notification", "receipt")


class InboundNumberForm(forms.ModelForm):
    """Kept as GOV.UK Notify keeps it (a leading 44 as 0), one service per number."""

    class Meta:
        model = InboundNumber
        fields = ("service", "number")

    def clean(self):
        cleaned = super().clean()
        service, number = cleaned.get("service"), cleaned.get("number")
        if service is not None and number:
            try:
                cleaned["number"] = inbound_number_check(service=service, number=number)
            except InboundNumberTaken as err:
                self.add_error("number", str(err))
        return cleaned


@admin.register(InboundNumber)
class InboundNumberAdmin(admin.ModelAdmin):
    form = InboundNumberForm
    list_display = ("number", "service", "updated_at")
    search_fields = ("number", "service__name")
    list_select_related = ("service",)

    def save_model(self, request, obj, form, change):
        saved = inbound_number_set(service=obj.service, number=obj.number)
        obj.pk, obj.number = saved.pk, saved.number


class MatchedFilter(admin.SimpleListFilter):
    title = "service"
    parameter_name = "matched"

    def lookups(self, request, model_admin):
        return [("yes", "sent to a service's number"), ("no", "unmatched: no service has it")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(service__isnull=self.value() == "no")
        return queryset


@admin.register(ReceivedText)
class ReceivedTextAdmin(BigTableAdmin, ReadOnlyAdmin):
    list_display = ("created_at", "service", "notify_number", "sender", "provider", "callback")
    list_filter = (MatchedFilter, "provider", DayFilter, "service")
    list_select_related = ("service", "callback_event")
    search_fields = ("=notify_number", "=id")
    search_help_text = "our number (as kept: a leading 44 as 0) or the text's id, exactly"
    ordering = ("-created_at", "-id")
    fields = (
        "id",
        "service",
        "notify_number",
        "sender",
        "content",
        "provider",
        "provider_reference",
        "provider_date",
        "created_at",
        "receipt",
        "callback",
    )
    readonly_fields = fields

    @admin.display(description="sender")
    def sender(self, text):
        return recipient_mask(text.user_number)

    @admin.display(description="inbound callback")
    def callback(self, text):
        event = getattr(text, "callback_event", None)
        return event.get_state_display() if event else "none"
