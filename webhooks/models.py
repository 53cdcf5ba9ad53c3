"""Status, complaint and inbound callbacks to services (contract section 10): where each
service wants them, the outbox of events to send, and every attempt made."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifyproject.encryption import secret_decrypt, secret_encrypt


class CallbackEndpoint(models.Model):
    """Where a service wants one kind of callback, with its bearer token and signing secret(s).

    The token and secrets are needed in plain text to send, so they are kept encrypted
    (`notifyproject.encryption`), never in plain text and never shown after they are set.
    While a secret is being rolled, the previous one signs too (both signatures are sent).
    """

    url = models.CharField(max_length=2048)
    bearer_token_encrypted = models.TextField(editable=False)
    signing_secret_encrypted = models.TextField(editable=False)
    previous_signing_secret_encrypted = models.TextField(editable=False, blank=True, default="")
    secret_rolled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.service} → {self.url}"

    @property
    def bearer_token(self) -> str:
        return secret_decrypt(self.bearer_token_encrypted)

    @bearer_token.setter
    def bearer_token(self, value: str) -> None:
        self.bearer_token_encrypted = secret_encrypt(value)

    def signing_secrets(self) -> list[str]:
        """The current secret, then the previous one while a roll is under way."""
        secrets = [secret_decrypt(self.signing_secret_encrypted)]
        if self.previous_signing_secret_encrypted:
            secrets.append(secret_decrypt(self.previous_signing_secret_encrypted))
        return secrets


class ServiceCallback(CallbackEndpoint):
    """Status and complaint callbacks (`PUT /service/callback`)."""

    service = models.OneToOneField(
        "sending.Service", on_delete=models.CASCADE, related_name="callback"
    )

    class Meta:
        verbose_name = "service callback"


class ServiceInboundCallback(CallbackEndpoint):
    """Received texts (`PUT /service/inbound-callback`): a URL, token and secret of its own."""

    service = models.OneToOneField(
        "sending.Service", on_delete=models.CASCADE, related_name="inbound_callback"
    )

    class Meta:
        verbose_name = "service inbound callback"


class CallbackKind(models.TextChoices):
    STATUS = "status"
    COMPLAINT = "complaint"
    INBOUND = "inbound"


# Where each kind of event is sent: the service's row of this model.
ENDPOINT_MODELS: dict[str, type[CallbackEndpoint]] = {
    CallbackKind.STATUS: ServiceCallback,
    CallbackKind.COMPLAINT: ServiceCallback,
    CallbackKind.INBOUND: ServiceInboundCallback,
}


class CallbackState(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    RETRYING = "failed-retrying", "failed, will retry"
    GIVEN_UP = "given-up"


# An event in one of these is still to be sent (for `sending`: when its lease has run out).
UNFINISHED_STATES = (CallbackState.PENDING, CallbackState.RETRYING, CallbackState.SENDING)


class CallbackEvent(models.Model):
    """One callback to send: written in the same transaction as the change it reports (the
    outbox), then sent, retried, and kept with its outcome. Its id is the `webhook-id`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(
        "sending.Service", on_delete=models.CASCADE, related_name="callback_events"
    )
    notification = models.ForeignKey(
        "sending.Notification",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="callback_events",
    )
    received_text = models.OneToOneField(
        "callbacks.ReceivedText",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="callback_event",
    )
    complaint = models.OneToOneField(
        "callbacks.Complaint",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="callback_event",
    )
    kind = models.CharField(max_length=10, choices=CallbackKind.choices)
    payload = models.JSONField()
    state = models.CharField(
        max_length=20, choices=CallbackState.choices, default=CallbackState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        default=timezone.now, help_text="when it is due; while sending, when the lease runs out"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "callback event"
        ordering = ["-created_at"]
        constraints = [
            # A notification reaches a final status once, so it has one status event at most.
            models.UniqueConstraint(
                fields=["notification"],
                condition=Q(kind="status"),
                name="callback_event_one_status",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="callback_event_due",
                condition=Q(state__in=["pending", "failed-retrying", "sending"]),
            ),
            models.Index(
                fields=["service", "next_attempt_at"],
                name="callback_event_service_due",
                condition=Q(state__in=["pending", "failed-retrying", "sending"]),
            ),
            models.Index(fields=["state", "created_at"], name="callback_event_state"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} callback {self.id} ({self.state})"


class CallbackAttempt(models.Model):
    """One POST of an event to the service's URL, whatever came of it."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered"
        RETRY = "retry", "failed, will retry"
        GIVEN_UP = "given-up"

    event = models.ForeignKey(CallbackEvent, on_delete=models.CASCADE, related_name="attempt_rows")
    notification = models.ForeignKey(
        "sending.Notification",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="callback_attempts",
    )
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        verbose_name = "callback attempt"
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"callback attempt {self.status_code or self.error[:30]} at {self.started_at}"
