import uuid

from django.contrib import admin, messages

from callbacks.models import Complaint, Receipt, ReceiptState
from callbacks.services import receipt_process
from sending.admin import ReadOnlyAdmin


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ("id", "provider", "state", "received_at", "reference", "outcome")
    list_filter = ("provider", "state", "received_at")
    date_hierarchy = "received_at"
    search_fields = ("reference",)
    show_full_result_count = False
    actions = ["replay"]

    def get_search_results(self, request, queryset, search_term):
        # A notification id as it is stored, whatever case or braces it was typed with.
        try:
            return queryset.filter(reference=str(uuid.UUID(search_term.strip()))), False
        except ValueError:
            return queryset.filter(reference=search_term.strip()), False

    @admin.action(
        description="Replay selected receipts (not processed yet, failed or rejected)",
        permissions=["replay"],
    )
    def replay(self, request, queryset):
        replayable = queryset.filter(
            state__in=[ReceiptState.RECEIVED, ReceiptState.FAILED, ReceiptState.REJECTED]
        )
        states = []
        for receipt in replayable:
            receipt_process(receipt=receipt)
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
