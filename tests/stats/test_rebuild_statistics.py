"""`manage.py rebuild_statistics`: rows recomputed from the notifications, corrections reported."""

from datetime import date, datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from sending.models import Notification, NotificationStatus, NotificationType, Service
from sending.status import notification_update_status
from stats.models import DailyStatistics
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus


def rebuild(*args) -> str:
    out = StringIO()
    call_command("rebuild_statistics", *args, stdout=out)
    return out.getvalue()


def test_correct_rows_are_left_as_they_are(service):
    notification = notification_make(service=service)
    notification_update_status(notification_id=notification.id, status=S.DELIVERED)
    before = statistics_of(service)

    output = rebuild()

    assert statistics_of(service) == before
    assert "Checked 1 row(s) over 7 day(s); corrected 0." in output
    assert "  corrected " not in output


def test_wrong_missing_and_stray_rows_are_corrected_and_reported(service, settings):
    settings.TIME_ZONE = "Europe/London"
    other = Service.objects.create(name="Other service")
    london = ZoneInfo("Europe/London")
    day = date(2026, 7, 1)
    # 00:30 London time on 1 July is 23:30 UTC on 30 June: it belongs to 1 July.
    early = notification_make(
        service=service, created_at=datetime(2026, 7, 1, 0, 30, tzinfo=london)
    )
    email = notification_make(
        service=service,
        notification_type=NotificationType.EMAIL,
        created_at=datetime(2026, 7, 1, 12, tzinfo=london),
    )
    notification_update_status(notification_id=early.id, status=S.DELIVERED)
    notification_update_status(notification_id=email.id, status=S.TECHNICAL_FAILURE)
    # Damage: a lost count, a missing row and a row with nothing behind it.
    DailyStatistics.objects.filter(service=service, day=day).update(sms_delivered=0)
    notification_make(service=other, created_at=datetime(2026, 7, 1, 9, tzinfo=london))
    DailyStatistics.objects.filter(service=other).delete()
    DailyStatistics.objects.create(service=other, day=date(2026, 7, 2), sms_failed=3)

    output = rebuild("--start", "2026-07-01", "--end", "2026-07-02")

    assert statistics_of(service, day) == {
        "sms_requested": 1,
        "sms_delivered": 1,
        "sms_failed": 0,
        "sms_fragments": 1,
        "emails_requested": 1,
        "emails_delivered": 0,
        "emails_failed": 1,
    }
    assert statistics_of(other, day)["sms_requested"] == 1
    assert statistics_of(other, date(2026, 7, 2))["sms_failed"] == 0
    assert "corrected 2026-07-01 Test service: sms_delivered 0 → 1" in output
    assert "corrected 2026-07-01 Other service: sms_requested 0 → 1" in output
    assert "corrected 2026-07-02 Other service: sms_failed 3 → 0" in output
    assert "2026-07-01: 2 row(s), 2 corrected (1/2)" in output
    assert "Checked 3 row(s) over 2 day(s); corrected 3." in output

    assert "corrected 0." in rebuild("--start", "2026-07-01", "--end", "2026-07-02")


def test_rebuilding_agrees_with_the_live_counts(api_client, service, settings, monkeypatch):
    settings.TIME_ZONE = "Europe/London"
    # One fixed moment, not now, so that a run across midnight cannot split the counts.
    noon = datetime(2026, 7, 3, 12, tzinfo=ZoneInfo("Europe/London"))
    monkeypatch.setattr(timezone, "now", lambda: noon)
    texts = ["Hello", "a" * 161, "ç" * 135, "{" * 81]  # 1, 2, 3 and 2 parts
    for content in texts:
        api_client.post(
            "/notifications/sms", {"phone_number": "07700900123", "content": content}, "json"
        )
    api_client.post(
        "/notifications/email",
        {"email_address": "a@example.com", "subject": "Hi", "content": "a" * 500},
        "json",
    )
    for notification, status in zip(
        Notification.objects.filter(notification_type="sms").order_by("content"),
        [S.DELIVERED, S.PERMANENT_FAILURE, S.TEMPORARY_FAILURE, S.PENDING],
        strict=True,
    ):
        notification_update_status(notification_id=notification.id, status=status)
    live = statistics_of(service, date(2026, 7, 3))
    assert (live["sms_requested"], live["sms_fragments"], live["emails_requested"]) == (4, 8, 1)

    assert "corrected 0." in rebuild("--start", "2026-07-03", "--end", "2026-07-03")
    assert statistics_of(service, date(2026, 7, 3)) == live

    DailyStatistics.objects.update(sms_fragments=0)
    output = rebuild("--start", "2026-07-03", "--end", "2026-07-03")
    assert "corrected 2026-07-03 Test service: sms_fragments 0 → 8" in output
    assert statistics_of(service, date(2026, 7, 3)) == live


def test_a_bad_range_is_refused(db):
    with pytest.raises(CommandError, match="must not be before"):
        rebuild("--start", "2026-07-02", "--end", "2026-07-01")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        rebuild("--start", "July")


def test_default_range_is_the_last_seven_days(db, settings, monkeypatch):
    # A fixed clock: "today" can't change between the command and this test near midnight.
    settings.TIME_ZONE = "Europe/London"
    just_after_midnight = datetime(2026, 7, 3, 0, 0, 1, tzinfo=ZoneInfo("Europe/London"))
    monkeypatch.setattr(timezone, "now", lambda: just_after_midnight)

    output = rebuild()

    assert "2026-06-27: 0 row(s), 0 corrected (1/7)" in output
    assert "2026-07-03: 0 row(s), 0 corrected (7/7)" in output


def test_statistics_are_listed_in_the_admin(service):
    DailyStatistics.objects.create(service=service, day=date(2026, 7, 1), sms_requested=42)
    client = Client()
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))

    page = client.get("/admin/stats/dailystatistics/", {"q": "Test serv"})

    assert page.status_code == 200
    assert '<td class="field-sms_requested">42</td>' in page.content.decode()
