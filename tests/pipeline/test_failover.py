import random
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from sending import failover
from sending.models import (
    Notification,
    NotificationStatus,
    ProviderDetails,
    ProviderDetailsHistory,
    SendAttempt,
)
from sending.services import notification_create
from sending.tasks import deliver_sms


@pytest.fixture(autouse=True)
def seeded(monkeypatch):
    monkeypatch.setattr(failover, "rng", random.Random(1234))


def set_priorities(**priorities):
    for name, priority in priorities.items():
        ProviderDetails.objects.filter(name=name).update(priority=priority)


def priorities() -> dict[str, int]:
    return dict(
        ProviderDetails.objects.filter(notification_type="sms").values_list("name", "priority")
    )


def later(monkeypatch, **delta):
    moment = timezone.now() + timedelta(**delta)
    monkeypatch.setattr(failover, "now", lambda: moment)


def test_resting_split_is_fifty_fifty(db):
    assert priorities() == {"firetext": 50, "mmg": 50}


def test_choice_is_weighted_by_priority(db):
    set_priorities(firetext=70, mmg=30)
    picks = Counter(failover.provider_choose() for _ in range(2000))
    assert 0.65 < picks["firetext"] / 2000 < 0.75


def test_a_provider_at_zero_gets_nothing_while_another_has_priority(db):
    set_priorities(firetext=0, mmg=100)
    assert {failover.provider_choose() for _ in range(200)} == {"mmg"}


def test_failover_reaches_a_provider_at_zero_when_it_is_the_only_other(db):
    set_priorities(firetext=100, mmg=0)
    assert failover.provider_choose(exclude=frozenset({"firetext"})) == "mmg"


def test_inactive_providers_are_never_chosen(db):
    ProviderDetails.objects.filter(name="firetext").update(active=False)
    assert {failover.provider_choose() for _ in range(100)} == {"mmg"}
    assert failover.provider_choose(exclude=frozenset({"mmg"})) is None


def test_international_texts_go_only_to_providers_that_support_them(db):
    ProviderDetails.objects.filter(name="mmg").update(supports_international=False)
    assert {failover.provider_choose(international=True) for _ in range(100)} == {"firetext"}


def record_errors(provider: str, count: int, notification) -> None:
    SendAttempt.objects.bulk_create(
        SendAttempt(
            notification=notification,
            provider=provider,
            started_at=timezone.now(),
            duration_ms=5,
            outcome="error",
            status_code=503,
        )
        for _ in range(count)
    )


@pytest.fixture
def notification(service):
    return Notification.objects.create(
        service=service, notification_type="sms", recipient="447700900123", content="hi"
    )


def test_ten_errors_in_a_minute_move_ten_points_away(notification, settings):
    record_errors("firetext", 9, notification)
    assert failover.provider_check_errors(provider="firetext") is False
    assert priorities() == {"firetext": 50, "mmg": 50}

    record_errors("firetext", 1, notification)
    assert failover.provider_check_errors(provider="firetext") is True
    assert priorities() == {"firetext": 40, "mmg": 60}
    change = ProviderDetailsHistory.objects.filter(provider__name="firetext").first()
    assert (change.priority, change.changed_by) == (40, "failover:errors")
    assert change.reason == "firetext: 10 errors in 60 s; 10 points to mmg"
    gained = ProviderDetailsHistory.objects.filter(provider__name="mmg").first()
    assert gained.reason == "10 points from firetext (10 errors in 60 s)"


def gauges(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("notify.providers.")]


def test_real_failed_sends_reach_the_threshold_and_move_priority_with_its_gauge(
    service, fake_clients, statsd, django_capture_on_commit_callbacks
):
    """Contract section 5 through the wire: Firetext answers every send with a 503 (the fake
    made to fail through its `/_control`); each text fails over to MMG, and the tenth error in
    the window moves ten points away, each provider's new priority sent as a gauge (section 8)."""
    set_priorities(firetext=100, mmg=0)  # every first call goes to Firetext
    fake_clients.control(provider="firetext", down=True, mode="error")

    def send_one() -> Notification:
        text = notification_create(
            service=service, notification_type="sms", recipient="447700900123", content="hi"
        )
        with django_capture_on_commit_callbacks(execute=True):  # the gauge goes once committed
            deliver_sms(str(text.id))
        return Notification.objects.get(id=text.id)

    for _ in range(9):
        assert (send_one().sent_by, priorities()) == ("mmg", {"firetext": 100, "mmg": 0})
    assert gauges(statsd.received()) == []

    assert send_one().sent_by == "mmg"

    assert priorities() == {"firetext": 90, "mmg": 10}
    moved = ProviderDetailsHistory.objects.filter(changed_by="failover:errors")
    assert sorted(moved.values_list("provider__name", "reason")) == [
        ("firetext", "firetext: 10 errors in 60 s; 10 points to mmg"),
        ("mmg", "10 points from firetext (10 errors in 60 s)"),
    ]
    assert sorted(gauges(statsd.received())) == [
        "notify.providers.firetext.priority:90|g",
        "notify.providers.mmg.priority:10|g",
    ]
    calls = [(r["provider"], r["status"]) for r in fake_clients.requests()]
    assert calls == [("firetext", 503), ("mmg", 200)] * 10
    errors = SendAttempt.objects.filter(provider="firetext", outcome="error", status_code=503)
    assert errors.count() == 10


def test_old_errors_do_not_count(notification, monkeypatch):
    record_errors("firetext", 10, notification)
    later(monkeypatch, seconds=61)
    assert failover.provider_check_errors(provider="firetext") is False


def test_priority_moves_at_most_once_a_minute(db, monkeypatch):
    assert failover.provider_priority_shift(
        away_from="mmg", changed_by="failover:errors", reason="x"
    )
    assert not failover.provider_priority_shift(
        away_from="mmg", changed_by="failover:errors", reason="x"
    )
    assert priorities() == {"firetext": 60, "mmg": 40}

    later(monkeypatch, seconds=61)
    assert failover.provider_priority_shift(
        away_from="mmg", changed_by="failover:errors", reason="x"
    )
    assert priorities() == {"firetext": 70, "mmg": 30}


def test_priority_moves_stay_within_zero_and_a_hundred(db):
    set_priorities(firetext=4, mmg=96)
    assert failover.provider_priority_shift(
        away_from="firetext", changed_by="failover:errors", reason="x"
    )
    assert priorities() == {"firetext": 0, "mmg": 100}


def test_nothing_moves_from_a_provider_already_at_zero(db):
    set_priorities(firetext=0, mmg=100)
    assert not failover.provider_priority_shift(
        away_from="firetext", changed_by="failover:errors", reason="x"
    )
    assert ProviderDetailsHistory.objects.filter(changed_by="failover:errors").count() == 0


def test_tend_back_waits_for_fifteen_quiet_minutes_then_moves_ten_points(db, monkeypatch):
    failover.provider_priority_shift(away_from="firetext", changed_by="failover:errors", reason="x")
    later(monkeypatch, seconds=61)
    failover.provider_priority_shift(away_from="firetext", changed_by="failover:errors", reason="x")
    assert priorities() == {"firetext": 30, "mmg": 70}

    later(monkeypatch, minutes=14)
    assert failover.providers_tend_back() == []

    later(monkeypatch, minutes=16)
    assert sorted(failover.providers_tend_back()) == ["firetext", "mmg"]
    assert priorities() == {"firetext": 40, "mmg": 60}
    assert ProviderDetailsHistory.objects.first().changed_by == "schedule:tend-back"


def test_tend_back_never_overshoots_the_resting_split(db, monkeypatch):
    set_priorities(firetext=45, mmg=55)
    later(monkeypatch, minutes=16)
    failover.providers_tend_back()
    assert priorities() == {"firetext": 50, "mmg": 50}
    later(monkeypatch, minutes=40)
    assert failover.providers_tend_back() == []


def sent_texts(
    service, provider: str, count: int, *, minutes_ago: float, status, delivered_after=None
):
    now = timezone.now()
    for _ in range(count):
        n = Notification.objects.create(
            service=service, notification_type="sms", recipient="447700900123", content="hi"
        )
        sent_at = now - timedelta(minutes=minutes_ago)
        updated_at = sent_at + delivered_after if delivered_after else now
        Notification.objects.filter(id=n.id).update(
            status=status, sent_by=provider, sent_at=sent_at, updated_at=updated_at
        )


def test_a_provider_with_slow_deliveries_is_lowered_while_the_other_is_fast(service):
    fast = timedelta(seconds=20)
    sent_texts(service, "firetext", 8, minutes_ago=10, status="delivered", delivered_after=fast)
    sent_texts(service, "firetext", 2, minutes_ago=10, status="sending")  # 20 % not delivered
    sent_texts(service, "mmg", 10, minutes_ago=10, status="delivered", delivered_after=fast)

    assert failover.providers_check_slow_delivery() == "firetext"
    assert priorities() == {"firetext": 40, "mmg": 60}
    lowered = ProviderDetailsHistory.objects.filter(provider__name="firetext").first()
    assert lowered.reason == "firetext: 20% of 10 texts slower than 5 minutes; 10 points to mmg"


def test_deliveries_that_took_over_five_minutes_count_as_slow(service):
    sent_texts(
        service, "mmg", 10, minutes_ago=12, status="delivered", delivered_after=timedelta(minutes=6)
    )
    sent_texts(
        service,
        "firetext",
        10,
        minutes_ago=12,
        status="delivered",
        delivered_after=timedelta(minutes=1),
    )
    assert failover.providers_check_slow_delivery() == "mmg"


def test_no_move_when_every_provider_is_slow_or_too_few_texts(service):
    sent_texts(service, "firetext", 10, minutes_ago=10, status="sending")
    sent_texts(service, "mmg", 10, minutes_ago=10, status="pending")
    assert failover.providers_check_slow_delivery() is None

    Notification.objects.filter(sent_by="mmg").update(
        status=NotificationStatus.DELIVERED, updated_at=F("sent_at") + timedelta(seconds=30)
    )
    Notification.objects.filter(sent_by="firetext").first().delete()  # 9 texts: too few to judge
    assert failover.providers_check_slow_delivery() is None
    assert priorities() == {"firetext": 50, "mmg": 50}


def test_texts_sent_under_five_minutes_ago_are_not_yet_slow(service):
    sent_texts(service, "firetext", 10, minutes_ago=2, status="sending")
    sent_texts(service, "mmg", 10, minutes_ago=2, status="sending")
    assert failover.provider_slow_share(provider="firetext") == (0.0, 10)
