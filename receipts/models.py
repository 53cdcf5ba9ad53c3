import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from sending.providers import SMS_PROVIDERS


def _receipt_providers() -> list[tuple[str, tuple[str, str]]]:
    """Each SMS provider's receipts, SES's, then each SMS provider's received texts: members
    `FIRETEXT`, `SES`, `FIRETEXT_INBOUND`, …, from `settings.SMS_PROVIDERS`."""
    posted = [
        *((p.name, p.display_name) for p in SMS_PROVIDERS),
        ("ses", "SES"),
        *(
            (f"{p.name}-inbound", f"{p.display_name} received text")
            for p in SMS_PROVIDERS
            if p.inbound_parser
        ),
    ]
    return [(value.upper().replace("-", "_"), (value, label)) for value, label in posted]


# Who posted it, and what: a delivery receipt, or a received text (`…-inbound`). A new provider
# changes the choices: its migration records them (docs/adding-a-provider.md).
ReceiptProvider = models.TextChoices("ReceiptProvider", _receipt_providers())


class ReceiptState(models.TextChoices):
    RECEIVED = "received", "received, not processed yet"
    PROCESSED = "processed"
    REJECTED = "rejected", "rejected (answered 400)"
    FAILED = "failed", "failed while processing"
    GIVEN_UP = "given-up", "given up: failed every attempt"
    # Not for a notification of this provider's channel that this provider was called for
    # (contract section 6): kept and answered 200, changed nothing; the outcome says why.
    IGNORED = "ignored", "ignored: not this provider's to report"


class Receipt(models.Model):
    """A delivery receipt exactly as a provider posted it, kept before anything else happens,
    so that none is lost and each can be replayed (`manage.py replay_receipts`)."""

    provider = models.CharField(max_length=20, choices=ReceiptProvider.choices)
    body = models.TextField(
        help_text="the request body as UTF-8 text (bytes that are not UTF-8 become U+FFFD)"
    )
    content_type = models.CharField(max_length=255, blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(
        max_length=10, choices=ReceiptState.choices, default=ReceiptState.RECEIVED
    )
    reference = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="the notification id, or for SES the message id, the receipt names",
    )
    reported_at = models.DateTimeField(
        null=True, blank=True, help_text="when the provider says it happened"
    )
    outcome = models.CharField(max_length=255, blank=True, default="")
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    # A receipt that failed this many times is `given-up`: no schedule replays it again (an
    # operator can, from the admin or with `replay_receipts --given-up`), so no row can keep
    # failing at every run.
    MAX_ATTEMPTS = 8

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["state", "received_at"], name="receipt_state_received"),
            models.Index(fields=["reference"], name="receipt_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} receipt {self.pk} ({self.state})"


class Complaint(models.Model):
    """A recipient marked an email as spam (SES `Complaint`); the notification's status stays."""

    notification = models.ForeignKey(
        "sending.Notification",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="complaints",
    )
    provider_reference = models.CharField(max_length=255, help_text="SES message id")
    feedback_id = models.CharField(
        max_length=255, unique=True, help_text="SES feedbackId (or the SNS MessageId without one)"
    )
    complaint_type = models.CharField(
        max_length=50, blank=True, default="", help_text="complaintFeedbackType, when given"
    )
    complained_at = models.DateTimeField(null=True, blank=True)
    receipt = models.ForeignKey(Receipt, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"complaint {self.feedback_id}"


class InboundNumber(models.Model):
    """The number people text to reach a service (contract section 6): one service per number,
    one number per service. Kept as GOV.UK Notify keeps it (`receipts.inbound_numbers`)."""

    number = models.CharField(max_length=30, unique=True)
    service = models.OneToOneField(
        "sending.Service", on_delete=models.CASCADE, related_name="inbound_number"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class ReceivedText(models.Model):
    """A text someone sent to one of our numbers, as its provider posted it (the raw post is
    `receipt`). `service` is None when no service has the number: kept, shown to no service."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(
        "sending.Service",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="received_texts",
    )
    provider = models.CharField(max_length=10)
    provider_reference = models.CharField(
        max_length=255, blank=True, default="", help_text="MMG's ID (Firetext sends none)"
    )
    user_number = models.CharField(max_length=255, help_text="the sender")
    notify_number = models.CharField(max_length=255, help_text="our number it was sent to")
    content = models.TextField()
    provider_date = models.DateTimeField(help_text="when the provider says it was received")
    created_at = models.DateTimeField(default=timezone.now)
    receipt = models.ForeignKey(Receipt, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A provider's repeat of one text (MMG's ID) is stored once, whatever the race.
            models.UniqueConstraint(
                fields=["provider", "provider_reference"],
                condition=~Q(provider_reference=""),
                name="received_text_once_per_reference",
            )
        ]
        indexes = [
            models.Index(fields=["service", "-created_at", "-id"], name="received_text_service"),
            models.Index(fields=["-created_at", "-id"], name="received_text_created"),
        ]

    def __str__(self) -> str:
        return f"received text {self.id}"
