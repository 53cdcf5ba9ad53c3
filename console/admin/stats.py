from django.contrib import admin

from console.admin.sending import ReadOnlyAdmin
from stats.models import STATISTICS_FIELDS, DailyStatistics


@admin.register(DailyStatistics)
class DailyStatisticsAdmin(ReadOnlyAdmin):
    list_display = ("day", "service", *STATISTICS_FIELDS)
    list_filter = ("service", "day")
    search_fields = ("service__name",)
    date_hierarchy = "day"
    list_select_related = ("service",)
