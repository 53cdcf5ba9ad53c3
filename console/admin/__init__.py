"""Every admin class, with the console (the apps below it keep none): the notifications,
services, templates and providers (`sending`), receipts and received texts (`receipts`), status
and inbound callbacks (`webhooks`), statistics (`stats`). Each module registers its own with the
admin site when imported, here, by Django's admin autodiscovery."""

from console.admin import receipts, sending, stats, webhooks

__all__ = ["receipts", "sending", "stats", "webhooks"]
