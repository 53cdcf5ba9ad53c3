"""The admin site, with the operator's front page as its index and the statistics chart."""

import functools
from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.safestring import mark_safe

from console.charts import hourly_chart_svg, statistics_chart_svg, statistics_series
from console.selectors import dashboard_read, notifications_by_hour
from sending.models import Service
from sending.text_rules import text_fault
from stats.models import DailyStatistics
from stats.selectors import daily_statistics_list

CHART_DAYS = 30


class ConsoleAdminSite(admin.AdminSite):
    site_header = "Notify operations"
    site_title = "Notify operations"
    index_title = "What is stuck, and who is failing"
    index_template = "console/index.html"
    # "View site": the API's own documentation, the one page this service shows a browser.
    site_url = "/docs/"
    # The lists need the width (ids stay on one line); the front page links to everything.
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        extra = {"dashboard": dashboard_read(now=timezone.now()), **(extra_context or {})}
        return super().index(request, extra_context=extra)

    def admin_view(self, view, cacheable=False):
        """Every console page refuses a value the database can't hold or take for an id: a list
        filter's `?status__exact=%00`, an object id such as django_q's task
        `/admin/django_q/failure/%00/change/`, or an action's selected id that is none of the
        model's (`x` for a receipt) reached the database as it was and answered 500."""
        checked_view = super().admin_view(view, cacheable)

        @functools.wraps(checked_view)
        def query_checked(request, *args, **kwargs):
            if problem := _url_values_fault(request, kwargs) or _selected_fault(request, view):
                return HttpResponseBadRequest(problem, content_type="text/plain")
            return checked_view(request, *args, **kwargs)

        return query_checked

    def get_urls(self):
        chart = path("statistics/", self.admin_view(self.statistics_view), name="statistics")
        return [chart, *super().get_urls()]

    def statistics_view(self, request):
        """Each service's last 30 days: a chart, and the numbers under it."""
        end = timezone.localdate()
        start = end - timedelta(days=CHART_DAYS - 1)
        active = DailyStatistics.objects.filter(day__gte=start, day__lte=end)
        services = Service.objects.filter(id__in=active.values("service_id")).order_by("name")
        series = statistics_series()
        charts = []
        for service in services:
            days = daily_statistics_list(service=service, start=start, end=end)
            charts.append(
                {
                    "service": service,
                    # pygal escapes every label and value it draws.
                    "svg": mark_safe(statistics_chart_svg(title=service.name, days=days)),  # noqa: S308
                    # The table newest first: tonight's numbers at the top.
                    "rows": [
                        (day["day"], [day[column] for column, _ in series])
                        for day in reversed(days)
                    ],
                }
            )
        hours = notifications_by_hour(now=timezone.now())
        context = {
            **self.each_context(request),
            "title": f"Statistics: the last 24 hours and the last {CHART_DAYS} days",
            # pygal escapes every label and value it draws.
            "hourly_svg": mark_safe(hourly_chart_svg(hours=hours)),  # noqa: S308
            "hours": hours,
            "charts": charts,
            "series": series,
            "start": start,
            "end": end,
        }
        return TemplateResponse(request, "console/statistics.html", context)


def _url_values_fault(request, kwargs: dict) -> str | None:
    """`<name> must not contain …` for the first query or path value the database can't hold."""
    path_values = [(name, [value]) for name, value in kwargs.items() if isinstance(value, str)]
    for name, values in [*request.GET.lists(), *path_values]:
        for value in values:
            if fault := text_fault(value):
                return f"{name} {fault}"
    return None


def _selected_fault(request, view) -> str | None:
    """An action's selected id (the list's checkboxes) that is not an id of the list's model:
    Django hands them to the database as they were posted."""
    model_admin = getattr(view, "__self__", None)  # a ModelAdmin's page is its bound method
    if request.method != "POST" or not isinstance(model_admin, admin.ModelAdmin):
        return None
    pk = model_admin.model._meta.pk
    for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
        if fault := text_fault(value):
            return f"{ACTION_CHECKBOX_NAME} {fault}"
        try:
            pk.to_python(value)
        except ValidationError:
            model = model_admin.opts.verbose_name
            return f"{ACTION_CHECKBOX_NAME} {value!r} is not an id of a {model}"
    return None
