"""A provider call whose worker died: recorded before it was made, held for a receipt, then
resent (logged and counted), never blindly repeated."""

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sending import tasks
from sending.delivery import deliveries_drain
from sending.models import Notification, NotificationStatus, SendAttempt
from sending.sweeps import notifications_queue_due_retries
from tests.pipeline.conftest import FIRETEXT_OK, FIRETEXT_URL, prefer
from tests.receipts.conftest import FIRETEXT, REFERENCE, fixture_text, post
from tests.stats.factories import notification_make

HOLD = 600


class WorkerDied(BaseException):
    """What SIGKILL looks like from inside: nothing after this line runs."""


@pytest.fixture(autouse=True)
def hold(settings):
    settings.SEND_UNKNOWN_OUTCOME_HOLD_SECONDS = HOLD


@pytest.fixture
def text(service):
    prefer("firetext")
    return notification_make(
        service=service, status=NotificationStatus.CREATED, notification_id=REFERENCE
    )


def died_mid_call(text, wire, *, seconds_ago: float) -> None:
    """Its worker made the call and died before hearing the answer, `seconds_ago`."""

    def die(request):
        raise WorkerDied

    wire.add_callback("POST", FIRETEXT_URL, callback=die)
    with pytest.raises(WorkerDied):
        tasks.deliver_sms(str(text.id))
    wire.reset()
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)
    started = timezone.now() - timedelta(seconds=seconds_ago)
    SendAttempt.objects.filter(notification=text).update(started_at=started)
    lease_ran_out = timezone.now() - timedelta(seconds=1)
    Notification.objects.filter(id=text.id).update(lease_until=lease_ran_out)


def test_the_call_is_on_record_before_it_is_made(text, wire):
    died_mid_call(text, wire, seconds_ago=0)
    assert list(SendAttempt.objects.values_list("provider", "outcome", "duration_ms")) == [
        ("firetext", "started", None)
    ]


def test_within_the_hold_it_is_not_sent_again_but_waits(text, wire):
    died_mid_call(text, wire, seconds_ago=60)

    tasks.deliver_sms(str(text.id))  # the replay sweep queued it once the lease ran out

    assert len(wire.calls) == 0
    held = Notification.objects.get(id=text.id)
    assert held.status == NotificationStatus.CREATED
    started = SendAttempt.objects.get().started_at
    assert held.next_attempt_at == started + timedelta(seconds=HOLD)
    assert held.queued_at is None and held.lease_until is None
    assert notifications_queue_due_retries() == 0  # not before the hold ends


def test_a_receipt_within_the_hold_settles_it_for_good(text, wire):
    died_mid_call(text, wire, seconds_ago=60)
    tasks.deliver_sms(str(text.id))

    post(FIRETEXT, fixture_text("firetext", "delivered.txt"))
    Notification.objects.filter(id=text.id).update(next_attempt_at=timezone.now())
    assert notifications_queue_due_retries() == 0
    tasks.deliver_sms(str(text.id))

    assert len(wire.calls) == 0
    assert Notification.objects.get(id=text.id).status == NotificationStatus.DELIVERED


def test_after_the_hold_it_is_resent_logged_and_counted(text, wire, statsd, caplog):
    died_mid_call(text, wire, seconds_ago=HOLD + 1)

    with caplog.at_level(logging.WARNING, logger="sending.attempts"):
        tasks.deliver_sms(str(text.id))

    assert len(wire.calls) == 1
    assert Notification.objects.get(id=text.id).status == NotificationStatus.SENDING
    outcomes = SendAttempt.objects.order_by("started_at").values_list("outcome", flat=True)
    assert list(outcomes) == ["unknown", "success"]
    assert "notify.tasks.deliver-sms.resent-after-unknown:1|c" in statsd.received()
    resent = [r for r in caplog.records if r.getMessage().startswith("resending after")]
    assert len(resent) == 1 and resent[0].notification_id == str(text.id)


def test_killed_after_the_provider_took_it_it_is_held_not_sent_again(text, wire, monkeypatch):
    """The attempt's success and the hand-over commit together: a worker killed before that
    commit leaves the call without an outcome, so the text waits for a receipt instead of going
    out again as soon as the lease runs out."""
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)

    def die(*args, **kwargs):
        raise WorkerDied

    with monkeypatch.context() as patched:
        patched.setattr("sending.delivery.notifications_status_change", die)
        with pytest.raises(WorkerDied):
            tasks.deliver_sms(str(text.id))
    assert len(wire.calls) == 1
    assert SendAttempt.objects.get().outcome == "started"
    lease_ran_out = timezone.now() - timedelta(seconds=1)
    Notification.objects.filter(id=text.id).update(lease_until=lease_ran_out)

    tasks.deliver_sms(str(text.id))  # the replay sweep queued it once the lease ran out

    assert len(wire.calls) == 1
    assert Notification.objects.get(id=text.id).status == NotificationStatus.CREATED
    assert Notification.objects.get(id=text.id).next_attempt_at is not None


def test_a_first_claim_reads_no_attempts(text, wire):
    """Only a notification claimed before can have a call with no outcome, so the usual send
    (claimed once, sent at once) pays for no look at its attempts."""
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)

    with CaptureQueriesContext(connection) as queries:
        tasks.deliver_sms(str(text.id))

    assert Notification.objects.get(id=text.id).status == NotificationStatus.SENDING
    attempts_read = [
        q["sql"] for q in queries if q["sql"].startswith("SELECT") and "sendattempt" in q["sql"]
    ]
    assert attempts_read == []


def test_one_claim_holds_resends_and_sends_each_as_its_own_calls_say(service, wire):
    """Texts claimed together each get their own answer: held (its dead worker's call is
    recent), resent (the hold has passed), sent (never claimed before); the claim reads their
    attempts once, whatever their number."""
    prefer("firetext")
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)
    held, resent = (
        notification_make(service=service, status=NotificationStatus.CREATED, called="firetext")
        for _ in range(2)
    )
    fresh = notification_make(service=service, status=NotificationStatus.CREATED)
    for text, seconds_ago in ((held, 60), (resent, HOLD + 1)):
        SendAttempt.objects.filter(notification=text).update(
            started_at=timezone.now() - timedelta(seconds=seconds_ago)
        )
    Notification.objects.filter(id__in=[held.id, resent.id]).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )

    with CaptureQueriesContext(connection) as queries:
        deliveries_drain(
            notification_type="sms",
            queryset=Notification.objects.filter(id__in=[held.id, resent.id, fresh.id]),
        )

    statuses = dict(Notification.objects.values_list("id", "status"))
    assert statuses == {
        held.id: NotificationStatus.CREATED,
        resent.id: NotificationStatus.SENDING,
        fresh.id: NotificationStatus.SENDING,
    }
    assert len(wire.calls) == 2
    outcomes = SendAttempt.objects.order_by("started_at").values_list("notification_id", "outcome")
    assert sorted(outcomes) == sorted(
        [(held.id, "started"), (resent.id, "unknown"), (resent.id, "success"),
         (fresh.id, "success")]
    )  # fmt: skip
    assert Notification.objects.get(id=held.id).next_attempt_at is not None
    attempts_read = [
        q["sql"] for q in queries if q["sql"].startswith("SELECT") and "sendattempt" in q["sql"]
    ]
    assert len(attempts_read) == 1
