import uuid

from django.contrib import admin, messages

from callbacks.models import Complaint, Receipt, ReceiptState
from callbacks.replay import receipt_replay
from callbacks.services import RACED, UNKNOWN_NOTIFICATION
from console.lists import BigTableAdmin, DayFilter
from console.masking import text_mask
from sending.admin import ReadOnlyAdmin

# What became of a receipt, as an operator asks it: each a filter on the stored state and
# the outcome text `receipt_take` wrote.
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
    if receipt.outcome.startswith("unchanged") or receipt.outcome == RACED:
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
        "received_at",
        "reported_at",
        "processed_at",
        "attempts",
        "content_type",
        "masked_body",
    )
    readonly_fields = fields
    actions = ["replay"]

    @admin.display(description="outcome kind")
    def outcome_kind(self, receipt):
        return receipt_outcome_kind(receipt)

    @admin.display(description="body (phone numbers and email addresses masked)")
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
        description="Replay selected receipts (not processed yet, failed, rejected or given up)",
        permissions=["replay"],
    )
    def replay(self, request, queryset):
        replayable = queryset.defer(None).filter(
            state__in=[
                ReceiptState.RECEIVED,
                ReceiptState.FAILED,
                ReceiptState.REJECTED,
                ReceiptState.GIVEN_UP,
            ]
        )
        states = []
        for receipt in replayable:
            receipt_replay(receipt=receipt)
            states.append(receipt.state)
        self.message_user(
            request,
            f"Replayed {len(states)} receipt(s): {states.count(ReceiptState.PROCESSED)} processed.",
            messages.SUCCESS,
        )

    def has_replay_permission(self, request):
        return request.user.has_perm("callbacks.change_receipt")


@admin.register(Complaint)
class ComplaintAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "notification", "complaint_type", "provider_reference")
    list_filter = ("complaint_type", "created_at")
    search_fields = ("provider_reference", "feedback_id")
    raw_id_fields = ("notification", "receipt")
