import hashlib
import secrets
import uuid

from django.db import models
from django.db.models import Q


class NotificationType(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class NotificationStatus(models.TextChoices):
    CREATED = "created"
    SENDING = "sending"
    PENDING = "pending"
    DELIVERED = "delivered"
    PERMANENT_FAILURE = "permanent-failure"
    TEMPORARY_FAILURE = "temporary-failure"
    TECHNICAL_FAILURE = "technical-failure"


# A receipt may move a notification on only from these; the others are final.
IN_FLIGHT_STATUSES = (
    NotificationStatus.CREATED,
    NotificationStatus.SENDING,
    NotificationStatus.PENDING,
)
FAILURE_STATUSES = (
    NotificationStatus.PERMANENT_FAILURE,
    NotificationStatus.TEMPORARY_FAILURE,
    NotificationStatus.TECHNICAL_FAILURE,
)
# Never changes again; a service with a callback is told of each (contract section 10).
FINAL_STATUSES = (NotificationStatus.DELIVERED, *FAILURE_STATUSES)


class Service(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """A bearer key for a service. Only its SHA-256 is kept; the secret is shown once."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="api_keys")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=8, editable=False, help_text="first characters, to recognise it"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.service.name} {self.prefix}…"

    @classmethod
    def issue(cls, service: Service) -> tuple["ApiKey", str]:
        secret = secrets.token_urlsafe(32)
        key = cls.objects.create(service=service, key_hash=api_key_hash(secret), prefix=secret[:8])
        return key, secret


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="notifications")
    notification_type = models.CharField(max_length=5, choices=NotificationType.choices)
    recipient = models.CharField(
        max_length=320, help_text="normalised phone number or email address"
    )
    international = models.BooleanField(default=False)
    subject = models.CharField(max_length=998, blank=True, default="")
    content = models.TextField()
    # SMS parts the text is sent and billed as (sending/fragments.py); null for an email.
    fragment_count = models.PositiveSmallIntegerField(null=True, blank=True)
    client_reference = models.CharField(max_length=255, blank=True, null=True)
    status = models.CharField(
        max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.CREATED
    )
    sent_by = models.CharField(max_length=20, blank=True, null=True)
    provider_reference = models.CharField(max_length=255, blank=True, null=True)
    provider_status_code = models.CharField(max_length=20, blank=True, default="")
    provider_status_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Delivery bookkeeping: `queued_at` is when its task was last handed to the broker (empty
    # while it waits for a planned retry); a worker holds it until `lease_until` while it sends;
    # after a failed run it waits for `next_attempt_at`; `retry_count` counts delayed retries.
    queued_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="notification_retry_due",
                condition=Q(
                    status="created", next_attempt_at__isnull=False, queued_at__isnull=True
                ),
            ),
            # The replay sweep: `created` notifications whose task left the broker (sweeps.py).
            models.Index(
                fields=["queued_at"],
                name="notification_queued",
                condition=Q(status="created", queued_at__isnull=False),
            ),
            # /healthz: the oldest `created` notification not waiting for a planned retry.
            models.Index(
                fields=["created_at"],
                name="notification_created_unplanned",
                condition=Q(status="created", next_attempt_at__isnull=True),
            ),
            models.Index(fields=["sent_by", "sent_at"], name="notification_sent_by_at"),
            models.Index(fields=["provider_reference"], name="notification_provider_ref"),
            models.Index(fields=["status", "created_at"], name="notification_status_created"),
            models.Index(fields=["service", "-created_at"], name="notification_service_created"),
            models.Index(
                fields=["service", "client_reference"],
                name="notification_client_ref",
                condition=Q(client_reference__isnull=False),
            ),
            # The console: the newest first, a search by client reference across services, and
            # the oldest unsettled claim.
            models.Index(fields=["created_at"], name="notification_created"),
            models.Index(
                fields=["client_reference"],
                name="notification_client_ref_any",
                condition=Q(client_reference__isnull=False),
            ),
            models.Index(
                fields=["lease_until"],
                name="notification_claimed",
                condition=Q(status="created", lease_until__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification_type} {self.id} ({self.status})"


class ProviderDetails(models.Model):
    """A provider we can hand notifications to; SMS providers share traffic by priority."""

    name = models.CharField(max_length=20, unique=True)
    display_name = models.CharField(max_length=50)
    notification_type = models.CharField(max_length=5, choices=NotificationType.choices)
    priority = models.PositiveSmallIntegerField(default=50, help_text="0–100; share of SMS traffic")
    active = models.BooleanField(default=True)
    supports_international = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "provider"
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__gte=0, priority__lte=100), name="provider_priority_0_100"
            )
        ]

    def __str__(self) -> str:
        return self.display_name


class ProviderDetailsHistory(models.Model):
    """Every change of a provider's priority or active flag: who or what, and why."""

    provider = models.ForeignKey(ProviderDetails, on_delete=models.CASCADE, related_name="history")
    priority = models.PositiveSmallIntegerField()
    active = models.BooleanField()
    changed_by = models.CharField(max_length=100)
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "provider details history"

    def __str__(self) -> str:
        return f"{self.provider.name} → {self.priority} ({self.changed_by})"


class SendAttempt(models.Model):
    """One hand-over of a notification to a provider, whatever came of it.

    Written `started` (and committed) before the provider is called, then given its outcome: an
    attempt still `started` after its worker died is a send whose outcome nobody knows; once the
    hold for a receipt has passed and it is sent again, it becomes `unknown`.
    """

    class Outcome(models.TextChoices):
        STARTED = "started"
        SUCCESS = "success"
        ERROR = "error"
        UNKNOWN = "unknown"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempts"
    )
    provider = models.CharField(max_length=20)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [
            models.Index(
                fields=["provider", "outcome", "started_at"], name="attempt_provider_recent"
            ),
            # /healthz: the oldest provider call still without an outcome.
            models.Index(
                fields=["started_at"], name="attempt_unsettled", condition=Q(outcome="started")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.outcome} at {self.started_at:%H:%M:%S}"


class IdempotencyKey(models.Model):
    """A service's `Idempotency-Key` and the answer its first request got (contract section 4):
    a hash of the request, never the request itself, and the answer's status and body.

    Unique per service, so that of two racing requests with one key only one can commit; it is
    written in the same transaction as the notifications it answers for.
    """

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "key"], name="idempotency_service_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"{self.service_id} {self.key}"
