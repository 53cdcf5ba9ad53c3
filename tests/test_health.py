from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.utils import timezone

from notifyproject.broker import UNREADABLE_COUNT, UNREADABLE_LAST
from sending.models import Notification, NotificationStatus, SendAttempt
from sending.services import notification_create


@pytest.fixture(autouse=True)
def no_unreadable_tasks_yet(db):
    """The count lives in the shared cache, which outlives a test's database."""
    cache.delete_many([UNREADABLE_COUNT, UNREADABLE_LAST])


def test_healthz_is_200_when_database_and_broker_answer(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    assert response.json()["broker"] == "ok"


def test_healthz_names_the_broker_when_it_does_not_answer(client, db):
    broken = mock.Mock(queue_size=mock.Mock(side_effect=ConnectionError("refused")))
    with mock.patch("notifyproject.health.get_broker", return_value=broken):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]


def test_livez_touches_nothing(client):
    assert client.get("/livez").json() == {"status": "ok"}


@pytest.fixture
def sms(service):
    return notification_create(
        service=service, notification_type="sms", recipient="447700900123", content="hi"
    )


def _age(notification, **fields):
    Notification.objects.filter(id=notification.id).update(**fields)


def test_healthz_reports_delivery_ages_when_it_keeps_up(client, sms):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert 0 <= body["oldest_created_seconds"] < 60
    assert body["oldest_claim_seconds"] is None
    assert body["unreadable_tasks"] == 0


def test_healthz_is_degraded_by_an_old_created_notification(client, sms, settings):
    settings.HEALTH_CREATED_AGE_LIMIT_SECONDS = 600
    _age(sms, created_at=timezone.now() - timedelta(seconds=700))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["oldest_created_seconds"] >= 700
    assert body["degraded"] == [body["degraded"][0]]
    assert "oldest created notification is 70" in body["degraded"][0]


def test_a_notification_waiting_for_a_planned_retry_does_not_degrade_health(client, sms):
    _age(
        sms,
        created_at=timezone.now() - timedelta(hours=2),
        next_attempt_at=timezone.now() + timedelta(minutes=5),
    )
    assert client.get("/healthz").status_code == 200


def test_healthz_is_degraded_by_a_provider_call_without_outcome(client, sms, settings):
    settings.HEALTH_UNSETTLED_CLAIM_LIMIT_SECONDS = 300
    SendAttempt.objects.create(
        notification=sms,
        provider="mmg",
        started_at=timezone.now() - timedelta(seconds=400),
        outcome=SendAttempt.Outcome.STARTED,
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["oldest_claim_seconds"] >= 400
    assert "a claim has had no outcome for 40" in response.json()["degraded"][0]


def test_a_call_without_outcome_settled_by_a_receipt_is_not_unsettled(client, sms):
    SendAttempt.objects.create(
        notification=sms,
        provider="mmg",
        started_at=timezone.now() - timedelta(hours=1),
        outcome=SendAttempt.Outcome.STARTED,
    )
    _age(sms, status=NotificationStatus.DELIVERED)
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["oldest_claim_seconds"] is None


def test_healthz_shows_the_drains_waiting_and_the_calls_in_flight(client, sms, service):
    _age(sms, queued_at=timezone.now() - timedelta(seconds=30))
    in_flight = notification_create(
        service=service, notification_type="sms", recipient="447700900124", content="hi"
    )
    _age(in_flight, lease_until=timezone.now() + timedelta(seconds=60))
    SendAttempt.objects.create(
        notification=in_flight,
        provider="mmg",
        started_at=timezone.now(),
        outcome=SendAttempt.Outcome.STARTED,
    )

    deliveries = client.get("/healthz").json()["deliveries"]

    # The leased one is a drain's: not waiting, but its call is in flight.
    assert deliveries["waiting"] == {"sms": 1, "email": 0}
    assert 29 <= deliveries["oldest_waiting_seconds"]["sms"] < 90
    assert deliveries["oldest_waiting_seconds"]["email"] is None
    assert deliveries["in_flight"] == {"mmg": 1}
