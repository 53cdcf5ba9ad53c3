"""The statistics chart, drawn on the server as SVG (pygal): no script, no font fetched."""

import pygal
from pygal.style import Style

from stats.models import STATISTICS_FIELDS

SERIES = {
    "sms_requested": "texts requested",
    "sms_delivered": "texts delivered",
    "sms_failed": "texts failed",
    "sms_fragments": "text parts sent",
    "emails_requested": "emails requested",
    "emails_delivered": "emails delivered",
    "emails_failed": "emails failed",
}
_STYLE = Style(
    background="white",
    plot_background="white",
    font_family="sans-serif",
    colors=("#417690", "#2e7d32", "#ba2121", "#9e9d24", "#79aec8", "#66bb6a", "#ef9a9a"),
)


def statistics_series() -> list[tuple[str, str]]:
    """(column, label) of each series the statistics hold, in chart order."""
    return [(column, label) for column, label in SERIES.items() if column in STATISTICS_FIELDS]


# What every console chart shares: drawn whole on the server, nothing fetched.
_CHART = {
    "style": _STYLE,
    "js": [],  # pygal's tooltips script would be fetched from the internet
    "disable_xml_declaration": True,
    "width": 900,
    "x_label_rotation": 45,
    "legend_at_bottom": True,
    "min_scale": 1,
    "include_x_axis": True,
}


def statistics_chart_svg(*, title: str, days: list[dict]) -> str:
    chart = pygal.Line(
        title=title,
        height=320,
        show_minor_x_labels=False,
        x_labels_major_every=5,
        legend_at_bottom_columns=4,
        show_dots=False,
        **_CHART,
    )
    chart.x_labels = [day["day"].strftime("%d %b") for day in days]
    for column, label in statistics_series():
        chart.add(label, [day[column] for day in days])
    return chart.render(is_unicode=True)


def hourly_chart_svg(*, hours: list[dict]) -> str:
    """Texts and emails made in each of the last 24 hours, every service together."""
    chart = pygal.Bar(
        title="Made in the last 24 hours, by hour (all services)", height=280, **_CHART
    )
    chart.x_labels = [hour["hour"].strftime("%H:00") for hour in hours]
    chart.add("texts", [hour["sms"] for hour in hours])
    chart.add("emails", [hour["email"] for hour in hours])
    return chart.render(is_unicode=True)
