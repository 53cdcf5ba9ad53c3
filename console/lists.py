"""What every console list over a big table shares: no full counts, cheap filters."""

from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.utils import timezone

from console.paginator import CappedCountPaginator
from sending.models import ProviderDetails

DAYS_OFFERED = 8


class BigTableAdmin(admin.ModelAdmin):
    """A list that opens at once on millions of rows: the count stops at 10,000
    (`CappedCountPaginator`), the unfiltered total is never counted, no filter shows counts,
    and there is no date hierarchy (it reads every row's date)."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a count for every filter choice: whole-table reads
    list_per_page = 50  # drawing a row costs more than finding it
    list_deferred: tuple[str, ...] = ()  # big columns the list never shows

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        match = request.resolver_match
        if self.list_deferred and match and match.url_name.endswith("_changelist"):
            rows = rows.defer(*self.list_deferred)
        return rows

    date_hierarchy = None

    class Media:
        css = {"all": ["console/console.css"]}


class ProviderFilter(admin.SimpleListFilter):
    """Providers from their own small table, not `SELECT DISTINCT` over the big one."""

    title = "provider"
    parameter_name = "provider"
    field = "provider"

    def lookups(self, request, model_admin):
        return list(ProviderDetails.objects.order_by("name").values_list("name", "display_name"))

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field: self.value()})
        return queryset


class DayFilter(admin.SimpleListFilter):
    """One local day of the last week (an index range on the time column); no query to list."""

    title = "day"
    parameter_name = "day"
    field = "created_at"

    def index_prefix(self) -> dict:
        """Conditions that change nothing but let PostgreSQL range-scan an index that starts
        with a column of few values before the time column (`state IN (…)`: one range a value)."""
        return {}

    def lookups(self, request, model_admin):
        today = timezone.localdate()
        days = [today - timedelta(days=n) for n in range(DAYS_OFFERED)]
        return [(day.isoformat(), "today" if day == today else f"{day:%a %d %b}") for day in days]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            day = date.fromisoformat(self.value())
        except ValueError:
            return queryset.none()
        start = timezone.make_aware(datetime.combine(day, time.min))
        return queryset.filter(
            **self.index_prefix(),
            **{f"{self.field}__gte": start, f"{self.field}__lt": start + timedelta(days=1)},
        )
