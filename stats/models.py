from django.db import models

STATISTICS_FIELDS = (
    "sms_requested",
    "sms_delivered",
    "sms_failed",
    "sms_fragments",
    "emails_requested",
    "emails_delivered",
    "emails_failed",
)


class DailyStatistics(models.Model):
    """One row per service per local day of creation (contract section 7)."""

    service = models.ForeignKey("sending.Service", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    sms_requested = models.PositiveIntegerField(default=0)
    sms_delivered = models.PositiveIntegerField(default=0)
    sms_failed = models.PositiveIntegerField(default=0)
    sms_fragments = models.PositiveIntegerField(default=0, help_text="parts of the texts requested")
    emails_requested = models.PositiveIntegerField(default=0)
    emails_delivered = models.PositiveIntegerField(default=0)
    emails_failed = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "daily statistics"
        constraints = [models.UniqueConstraint(fields=["service", "day"], name="stats_service_day")]
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.service_id} {self.day}"
