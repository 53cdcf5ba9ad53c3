"""`GET /statistics` (contract section 4): the caller's own daily counts."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from sending.models import ApiKey, NotificationStatus, NotificationType, Service
from sending.status import notification_update_status
from stats.models import DailyStatistics
from tests.stats.factories import notification_make

# The columns of contract section 7, written out: a column added or lost must fail here.
ZERO = dict.fromkeys(
    [
        "sms_requested",
        "sms_delivered",
        "sms_failed",
        "sms_fragments",
        "emails_requested",
        "emails_delivered",
        "emails_failed",
    ],
    0,
)


def errors(response) -> list[str]:
    body = response.json()
    assert body["status_code"] == response.status_code == 400
    return [(e["error"], e["message"]) for e in body["errors"]]


def test_counts_of_the_days_asked_for(api_client, service, settings):
    settings.TIME_ZONE = "Europe/London"
    # A fixed day, not today: a run across midnight must not split the counts.
    noon = datetime(2026, 3, 5, 12, tzinfo=ZoneInfo("Europe/London"))
    delivered = notification_make(service=service, created_at=noon)
    failed = notification_make(service=service, created_at=noon)
    notification_make(service=service, notification_type=NotificationType.EMAIL, created_at=noon)
    notification_update_status(notification_id=delivered.id, status=NotificationStatus.DELIVERED)
    notification_update_status(
        notification_id=failed.id, status=NotificationStatus.PERMANENT_FAILURE
    )
    DailyStatistics.objects.create(service=service, day=date(2026, 1, 2), sms_requested=5)

    response = api_client.get("/statistics", {"start": "2026-03-05", "end": "2026-03-05"})

    assert response.status_code == 200
    assert response.json() == {
        "statistics": [
            {
                "day": "2026-03-05",
                "sms_requested": 2,
                "sms_delivered": 1,
                "sms_failed": 1,
                "sms_fragments": 2,
                "emails_requested": 1,
                "emails_delivered": 0,
                "emails_failed": 0,
            }
        ]
    }


def test_every_day_of_the_range_oldest_first_with_zeros_for_quiet_days(api_client, service):
    DailyStatistics.objects.create(service=service, day=date(2026, 3, 2), emails_requested=4)

    response = api_client.get("/statistics", {"start": "2026-03-01", "end": "2026-03-03"})

    assert response.json()["statistics"] == [
        {**ZERO, "day": "2026-03-01"},
        {**ZERO, "day": "2026-03-02", "emails_requested": 4},
        {**ZERO, "day": "2026-03-03"},
    ]


def test_only_the_callers_service(api_client, service):
    other = Service.objects.create(name="Other")
    DailyStatistics.objects.create(service=other, day=date(2026, 3, 2), sms_requested=9)

    response = api_client.get("/statistics", {"start": "2026-03-02", "end": "2026-03-02"})

    assert response.json()["statistics"] == [{**ZERO, "day": "2026-03-02"}]


@pytest.fixture
def today_is_march_10th(settings, monkeypatch):
    """The clock at a fixed moment (Django's `timezone.now`, which `localdate` reads), so that
    "today" can't change between the request and the test's reading of it near midnight."""
    settings.TIME_ZONE = "Europe/London"
    moment = datetime(2026, 3, 10, 23, 59, 59, tzinfo=ZoneInfo("Europe/London"))
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_defaults_to_the_last_seven_days(api_client, service, today_is_march_10th):
    days = [d["day"] for d in api_client.get("/statistics").json()["statistics"]]

    assert days == [f"2026-03-{day:02}" for day in range(4, 11)]


def test_start_alone_runs_to_today_and_end_alone_goes_back_a_week(
    api_client, service, today_is_march_10th
):
    from_start = api_client.get("/statistics", {"start": "2026-03-08"}).json()
    to_end = api_client.get("/statistics", {"end": "2026-02-20"}).json()

    assert [d["day"] for d in from_start["statistics"]] == [
        "2026-03-08",
        "2026-03-09",
        "2026-03-10",
    ]
    assert [d["day"] for d in to_end["statistics"]] == [f"2026-02-{day}" for day in range(14, 21)]


def test_a_whole_year_is_allowed(api_client, service):
    response = api_client.get("/statistics", {"start": "2024-01-01", "end": "2024-12-31"})
    assert len(response.json()["statistics"]) == 366


@pytest.mark.parametrize(
    ("query", "messages"),
    [
        ({"start": "yesterday"}, ["start must be a date in the form YYYY-MM-DD"]),
        ({"start": "2026-02-30"}, ["start must be a date in the form YYYY-MM-DD"]),
        (
            {"start": "03/01/2026", "end": "2026-13-01"},
            [
                "start must be a date in the form YYYY-MM-DD",
                "end must be a date in the form YYYY-MM-DD",
            ],
        ),
        ({"start": "2026-03-02", "end": "2026-03-01"}, ["end must not be before start"]),
        (
            {"start": "2024-01-01", "end": "2025-01-01"},
            ["end must be less than 366 days after start"],
        ),
        ({"end": "0001-01-01", "start": "0001-01-02"}, ["end must not be before start"]),
        ({"day": "2026-03-01"}, ["day Additional properties are not allowed"]),
    ],
)
def test_bad_dates_are_400_in_the_api_error_format(api_client, service, query, messages):
    response = api_client.get("/statistics", query)

    assert errors(response) == [("ValidationError", m) for m in messages]


def test_the_earliest_dates_do_not_break_the_defaults(api_client, service):
    response = api_client.get("/statistics", {"end": "0001-01-02"})
    assert [d["day"] for d in response.json()["statistics"]] == ["0001-01-01", "0001-01-02"]


def test_needs_an_api_key(db):
    assert APIClient().get("/statistics").status_code == 401

    revoked_service = Service.objects.create(name="Revoked")
    key, secret = ApiKey.issue(revoked_service)
    ApiKey.objects.filter(id=key.id).update(revoked_at=timezone.now())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/statistics").status_code == 403


def test_the_schema_describes_statistics(db):
    schema = APIClient().get("/openapi.json").json()
    operation = schema["paths"]["/statistics"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"start", "end"}
    assert "/notifications/sms/firetext" not in schema["paths"]
