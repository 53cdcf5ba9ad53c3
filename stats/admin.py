from django.contrib import admin

from sending.admin import ReadOnlyAdmin
from stats.models import DailyStatistics


@admin.register(DailyStatistics)
class DailyStatisticsAdmin(ReadOnlyAdmin):
    list_display = (
        "day",
        "service",
        "sms_requested",
        "sms_delivered",
        "sms_failed",
        "emails_requested",
        "emails_delivered",
        "emails_failed",
    )
    list_filter = ("service", "day")
    search_fields = ("service__name",)
    date_hierarchy = "day"
    list_select_related = ("service",)
