"""The delivery engine: a drain claims many texts at once, keeps their calls in flight together,
records each as soon as its call completes, and holds a provider to its in-flight limit."""

import threading
import time
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone

from sending import delivery, tasks
from sending.clients.exceptions import SmsClientResponseException
from sending.engine import CallResult
from sending.models import Notification, NotificationStatus, SendAttempt
from sending.services import notifications_create
from tests.pipeline.conftest import FIRETEXT_OK, FIRETEXT_URL, prefer

# Long enough for any machine; a call that waits this long fails the test's provider call.
DEADLINE = 10


def texts(service, count: int) -> list[Notification]:
    return notifications_create(
        service=service,
        notifications=[
            {"notification_type": "sms", "recipient": "447700900123", "content": f"text {i}"}
            for i in range(count)
        ],
    )


def statuses() -> list[str]:
    return sorted(Notification.objects.values_list("status", flat=True))


def test_a_drain_keeps_its_calls_in_flight_together(service, wire):
    """Five calls the provider answers only once all five have reached it: one at a time,
    none would be answered."""
    prefer("firetext")
    texts(service, 5)
    together = threading.Barrier(5, timeout=DEADLINE)

    def answer_when_all_arrived(request):
        together.wait()
        return (200, {}, '{"code": 0, "description": "SMS successfully queued"}')

    wire.add_callback("POST", FIRETEXT_URL, callback=answer_when_all_arrived)

    assert tasks.drain_deliveries("sms") == 5
    assert statuses() == ["sending"] * 5
    assert len(wire.calls) == 5


def test_a_text_is_handed_over_without_waiting_for_the_slowest_call(service, wire, monkeypatch):
    """The slow call answers only once the drain has recorded the fast one as handed over."""
    prefer("firetext")
    fast, slow = texts(service, 2)
    fast_recorded = threading.Event()
    record = delivery.sends_record

    def recorded(finished):
        handed_over = record(finished)
        if any(send.notification.id == fast.id for send, _ in finished):
            fast_recorded.set()
        return handed_over

    def answer(request):
        if str(slow.id) in request.body and not fast_recorded.wait(DEADLINE):
            return (500, {}, "the fast text was not recorded first")
        return (200, {}, '{"code": 0, "description": "SMS successfully queued"}')

    monkeypatch.setattr(delivery, "sends_record", recorded)
    wire.add_callback("POST", FIRETEXT_URL, callback=answer)

    tasks.drain_deliveries("sms")

    assert statuses() == ["sending", "sending"]
    assert (
        Notification.objects.get(id=fast.id).sent_at < Notification.objects.get(id=slow.id).sent_at
    )


def test_a_text_due_while_calls_are_in_flight_goes_with_the_running_drain(service, wire):
    """A text that becomes due while the drain's only call is in flight is claimed by that drain
    at once: the first call is answered only once the second has reached the provider, so a
    drain that waited for its calls before claiming again would fail the first."""
    prefer("firetext")
    first, later = texts(service, 2)
    Notification.objects.filter(id=later.id).update(
        next_attempt_at=timezone.now() + timedelta(seconds=0.5)
    )
    later_arrived = threading.Event()

    def answer(request):
        if str(later.id) in request.body:
            later_arrived.set()
        elif not later_arrived.wait(DEADLINE):
            return (500, {}, "the later text was not sent while this call was in flight")
        return (200, {}, '{"code": 0, "description": "SMS successfully queued"}')

    wire.add_callback("POST", FIRETEXT_URL, callback=answer)

    assert tasks.drain_deliveries("sms") == 2
    assert statuses() == ["sending", "sending"]
    assert len(wire.calls) == 2


def test_a_provider_is_held_to_its_limit_of_calls_in_flight(service, wire, settings):
    settings.FIRETEXT_MAX_IN_FLIGHT = 2
    prefer("firetext")
    texts(service, 6)
    lock, now_in_flight, most = threading.Lock(), [0], [0]
    two_at_once = threading.Barrier(2, timeout=DEADLINE)

    def answer(request):
        with lock:
            now_in_flight[0] += 1
            most[0] = max(most[0], now_in_flight[0])
        try:
            two_at_once.wait()  # the limit is reached, not just respected by going one at a time
        except threading.BrokenBarrierError:
            pass
        with lock:
            now_in_flight[0] -= 1
        return (200, {}, '{"code": 0, "description": "SMS successfully queued"}')

    wire.add_callback("POST", FIRETEXT_URL, callback=answer)

    assert tasks.drain_deliveries("sms") == 6
    assert most[0] == 2
    assert statuses() == ["sending"] * 6


def test_a_drain_sends_every_waiting_text_once(service, wire):
    count = 3
    prefer("firetext")
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)
    texts(service, count)

    assert tasks.drain_deliveries("sms") == count
    assert tasks.drain_deliveries("sms") == 0
    assert len(wire.calls) == count
    assert statuses() == [NotificationStatus.SENDING] * count


def test_a_drain_past_its_time_lets_go_of_texts_it_could_not_call(service, wire, settings):
    """Another qcluster holds the provider's only place: the texts are left free, with no
    attempt on record (no provider heard of them), for the next drain."""
    settings.FIRETEXT_MAX_IN_FLIGHT = 1
    prefer("firetext")
    wire.post(FIRETEXT_URL, json=FIRETEXT_OK)
    texts(service, 3)
    cache.set("delivery-in-flight-firetext", 1)

    handed_over = delivery.deliveries_drain(notification_type="sms", until=time.monotonic() + 0.5)

    assert handed_over == 0 and len(wire.calls) == 0
    assert SendAttempt.objects.count() == 0
    assert (
        list(Notification.objects.values_list("status", "lease_until")) == [("created", None)] * 3
    )
    cache.set("delivery-in-flight-firetext", 0)  # the other qcluster's call ended
    assert tasks.drain_deliveries("sms") == 3


def test_calls_completed_together_each_keep_their_own_outcome(service):
    """A group's outcomes are written at once: each attempt still gets its own outcome, time,
    status code and error, and each hand-over its own reference."""
    prefer("firetext")
    texts(service, 3)
    sends = delivery.sends_claim(Notification.objects.filter(service=service), batch=3)
    busy = SmsClientResponseException("firetext", 503, "busy")
    results = [
        CallResult("ref-1", None, 120),
        CallResult(None, busy, 40),
        CallResult("ref-3", None, 7),
    ]

    assert delivery.sends_record(list(zip(sends, results, strict=True))) == 2

    ids = [send.notification.id for send in sends]
    attempts = {
        a.notification_id: (a.outcome, a.duration_ms, a.status_code, a.error)
        for a in SendAttempt.objects.all()
    }
    assert [attempts[i] for i in ids] == [
        ("success", 120, None, ""),
        ("error", 40, 503, str(busy)),
        ("success", 7, None, ""),
    ]
    rows = Notification.objects.in_bulk(ids)
    assert [(rows[i].status, rows[i].provider_reference) for i in ids] == [
        ("sending", "ref-1"),
        ("created", None),
        ("sending", "ref-3"),
    ]
