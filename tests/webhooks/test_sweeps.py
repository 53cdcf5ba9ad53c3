"""Events left behind are sent by the per-minute sweep; a service's drain sends its events several
at once (its share), stops at a failing endpoint and waits for that event's first retries, and hands
over to a fresh task when its turn is over; one service holds at most `IN_FLIGHT_PER_SERVICE`
drains; `replay_callbacks` sends given-up events again."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from sending.models import Service
from tests.webhooks.conftest import BEARER_TOKEN, Answer, final_event, send
from tests.webhooks.test_outbox import queued_callbacks
from webhooks import delivery, outbox, sweeps
from webhooks.models import CallbackEvent, CallbackState
from webhooks.services import service_callback_set

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queue():
    queued_callbacks()


def test_the_sweep_is_scheduled_every_minute(db):
    schedule = Schedule.objects.get(name="send due status callbacks")
    assert (schedule.func, schedule.minutes) == ("webhooks.tasks.queue_due_callbacks", 1)


def test_an_event_whose_task_was_lost_is_queued_by_the_sweep(service, callback, clock):
    event = final_event(service)
    assert sweeps.callback_events_queue_due() == 0  # its own task may still be on its way
    clock.advance(seconds=11)
    assert sweeps.callback_events_queue_due() == 1
    assert queued_callbacks() == [str(service.id)]
    assert delivery.callbacks_drain(service_id=event.service_id) == 1


def test_a_retry_is_queued_when_due_and_not_before(service, callback, receiver, clock):
    receiver.answer(Answer(503))
    event = final_event(service)
    assert send(event) == CallbackState.RETRYING
    clock.advance(seconds=5)
    assert sweeps.callback_events_queue_due() == 0
    clock.advance(seconds=16)
    assert sweeps.callback_events_queue_due() == 1
    assert queued_callbacks() == [str(service.id)]
    assert send(event) == CallbackState.DELIVERED


def test_an_event_claimed_by_a_worker_that_died_is_sent_after_its_lease(
    service, callback, receiver, clock
):
    event = final_event(service)
    assert delivery.callback_event_claim(event_id=str(event.id)) is not None  # then it died
    assert send(event) is None  # another worker: not while the lease runs
    clock.advance(seconds=delivery.LEASE.total_seconds() - 1)
    assert sweeps.callback_events_queue_due() == 0
    clock.advance(seconds=2)
    assert sweeps.callback_events_queue_due() == 1
    assert send(event) == CallbackState.DELIVERED
    assert len(receiver.received) == 1


def test_one_service_holds_at_most_its_slots_of_drains(service, callback, receiver, monkeypatch):
    monkeypatch.setattr(outbox, "IN_FLIGHT_PER_SERVICE", 1)
    other = Service.objects.create(name="Other service")
    service_callback_set(service=other, url=receiver.url, bearer_token=BEARER_TOKEN)

    assert outbox.callback_drain_request(service_id=service.id) is True
    assert outbox.callback_drain_request(service_id=service.id) is False  # its one slot is held
    assert outbox.callback_drain_request(service_id=other.id) is True  # not held up by it
    assert queued_callbacks() == [str(service.id), str(other.id)]  # (the slots given back)
    assert outbox.callback_drain_request(service_id=service.id) is True


def test_a_drain_sends_every_due_event_of_its_service_and_gives_its_slot_back(
    service, callback, receiver, monkeypatch
):
    monkeypatch.setattr(delivery, "DRAIN_BATCH", 2)  # two batches and a bit
    events = [final_event(service) for _ in range(5)]
    other = Service.objects.create(name="Other service")
    service_callback_set(service=other, url=receiver.url, bearer_token=BEARER_TOKEN)
    theirs = final_event(other)
    assert outbox.callback_drain_request(service_id=service.id) is True

    assert delivery.callbacks_drain(service_id=service.id) == 5

    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(
        str(event.id) for event in events
    )
    assert set(CallbackEvent.objects.filter(service=service).values_list("state", flat=True)) == {
        CallbackState.DELIVERED
    }
    assert CallbackEvent.objects.get(id=theirs.id).state == CallbackState.PENDING  # not its own
    assert outbox.callback_drain_request(service_id=service.id) is True  # the slot is free


def webhook_ids(receiver) -> list[str]:
    return [request.headers["webhook-id"] for request in receiver.received]


def test_a_drain_stops_at_a_failing_endpoint_and_tries_that_event_again_10_s_later(
    service, callback, receiver, clock
):
    """The first retry comes 10 s after the failure, from the drain itself (not the sweep a
    minute later); the rest waited untried, and go out once the endpoint answers again."""
    receiver.answer(Answer(503))
    events = [final_event(service) for _ in range(3)]

    assert delivery.callbacks_drain(service_id=service.id) == 4

    failed, *after = webhook_ids(receiver)
    assert after[0] == failed  # one POST to a failing endpoint, then that event's retry
    assert sorted(after) == sorted(str(event.id) for event in events)
    assert clock.waits == [10]
    retried = CallbackEvent.objects.get(id=failed)
    first, second = retried.attempt_rows.order_by("started_at")
    assert (first.outcome, second.outcome) == ("retry", "delivered")
    assert second.started_at - first.started_at == timedelta(seconds=10)
    for event in CallbackEvent.objects.exclude(id=failed):
        assert (event.state, event.attempts) == (CallbackState.DELIVERED, 1)


def test_a_drain_waits_for_the_first_two_retries_and_leaves_later_ones_to_the_sweep(
    service, callback, receiver, clock
):
    receiver.default = Answer(503)
    [final_event(service) for _ in range(3)]

    assert delivery.callbacks_drain(service_id=service.id) == 3

    assert clock.waits == [10, 20]
    assert len(set(webhook_ids(receiver))) == 1  # the same event each time, none of the rest
    failed = CallbackEvent.objects.get(id=webhook_ids(receiver)[0])
    assert (failed.state, failed.attempts) == (CallbackState.RETRYING, 3)
    assert failed.next_attempt_at == clock.current + timedelta(seconds=40)
    for event in CallbackEvent.objects.exclude(id=failed.id):
        assert (event.state, event.attempts) == (CallbackState.PENDING, 0)
    assert outbox.callback_drain_request(service_id=service.id) is True  # its slot is free


def test_a_drain_whose_turn_is_over_still_waits_for_the_retry_of_the_event_that_failed(
    service, callback, receiver, clock, monkeypatch
):
    monkeypatch.setattr(delivery, "DRAIN_SLICE", 0)  # its turn ends with the failed POST
    receiver.answer(Answer(503))
    event = final_event(service)

    assert delivery.callbacks_drain(service_id=service.id) == 2

    assert clock.waits == [10]
    assert webhook_ids(receiver) == [str(event.id)] * 2
    assert CallbackEvent.objects.get(id=event.id).state == CallbackState.DELIVERED


def test_a_drain_waits_for_no_retry_past_its_task_time(
    service, callback, receiver, clock, monkeypatch
):
    monkeypatch.setattr(delivery, "DRAIN_BUDGET", 5)  # django-q would kill it before 10 s
    receiver.default = Answer(503)
    final_event(service)

    assert delivery.callbacks_drain(service_id=service.id) == 1
    assert clock.waits == []


def test_a_drain_has_several_posts_in_flight_after_the_first_but_no_more_than_its_share(
    service, callback, receiver, monkeypatch
):
    """A slow endpoint's backlog does not go one POST at a time, nor all at once: the first
    goes alone (a failing endpoint gets one), then up to the service's share at once."""
    monkeypatch.setattr(delivery, "POSTS_PER_DRAIN", 3)
    receiver.default = Answer(delay=0.3)  # inside the tests' 0.5 s timeout
    events = [final_event(service) for _ in range(7)]

    assert delivery.callbacks_drain(service_id=service.id) == 7

    assert receiver.in_flight_on_arrival[0] == 1
    assert receiver.most_in_flight == 3
    assert sorted(webhook_ids(receiver)) == sorted(str(event.id) for event in events)
    states = CallbackEvent.objects.filter(id__in=[e.id for e in events]).values_list("state")
    assert {state for (state,) in states} == {CallbackState.DELIVERED}


def test_a_drain_whose_turn_is_over_hands_over_to_a_fresh_task(
    service, callback, receiver, monkeypatch
):
    monkeypatch.setattr(delivery, "DRAIN_SLICE", 0)  # one POST, then the next service's turn
    events = [final_event(service) for _ in range(3)]

    assert delivery.callbacks_drain(service_id=service.id) == 1

    assert queued_callbacks() == [str(service.id)]  # a fresh drain for the rest, at the back
    states = CallbackEvent.objects.filter(id__in=[e.id for e in events]).values_list("state")
    assert sorted(state for (state,) in states) == ["delivered", "pending", "pending"]


def test_an_event_written_as_the_drain_gave_its_slot_back_is_still_sent(
    service, callback, receiver, monkeypatch
):
    """The drain found nothing, and an event committed before its slot was free asked for no
    drain (the slot was held): the drain looks once more after giving the slot back."""
    claim = delivery.callback_events_claim
    calls = []

    def claim_missing_the_first_time(**kwargs):
        calls.append(kwargs)
        return [] if len(calls) == 1 else claim(**kwargs)

    monkeypatch.setattr(delivery, "callback_events_claim", claim_missing_the_first_time)
    event = final_event(service)
    outbox.callback_drain_slot_take(service_id=service.id, slot=0)

    assert delivery.callbacks_drain(service_id=service.id) == 1

    assert receiver.received[0].headers["webhook-id"] == str(event.id)
    assert len(calls) == 3  # missed, found it, found nothing more


def given_up(service, receiver) -> CallbackEvent:
    receiver.answer(Answer(400))
    event = final_event(service)
    assert send(event) == CallbackState.GIVEN_UP
    return event


def test_replay_sends_given_up_events_again_with_the_same_webhook_id(service, callback, receiver):
    event = given_up(service, receiver)
    out = StringIO()
    call_command("replay_callbacks", stdout=out)
    assert "Queued 1 callback(s) to send again." in out.getvalue()
    assert queued_callbacks() == [str(service.id)]
    event.refresh_from_db()
    assert (event.state, event.attempts) == (CallbackState.PENDING, 0)
    assert send(event) == CallbackState.DELIVERED
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
    assert list(event.attempt_rows.values_list("outcome", flat=True)) == ["given-up", "delivered"]


def test_replay_filters_by_service_state_and_time(service, callback, receiver):
    mine = given_up(service, receiver)
    other = Service.objects.create(name="Other service")
    service_callback_set(service=other, url=receiver.url, bearer_token=BEARER_TOKEN)
    theirs = given_up(other, receiver)
    delivered = final_event(service)
    send(delivered)

    def replayed(*args) -> list[str]:
        call_command("replay_callbacks", *args, stdout=StringIO())
        queued_callbacks()
        pending = CallbackEvent.objects.filter(state=CallbackState.PENDING, attempts=0)
        found = list(pending.values_list("id", flat=True))
        pending.update(state=CallbackState.GIVEN_UP)  # back as they were, for the next call
        return found

    assert replayed("--service", "Other service") == [theirs.id]
    delivered_again = replayed("--state", "delivered")
    assert delivered_again == [delivered.id]
    CallbackEvent.objects.filter(id=delivered.id).update(state=CallbackState.DELIVERED)
    assert replayed("--since", "2999-01-01T00:00") == []
    assert replayed("--until", "2999-01-01", "--service", str(service.id)) == [mine.id]
    with pytest.raises(CommandError, match="no such service"):
        call_command("replay_callbacks", "--service", "nobody")


def test_replay_shows_progress(service, callback, receiver, monkeypatch):
    monkeypatch.setattr(sweeps, "BATCH", 2)
    for _ in range(3):
        given_up(service, receiver)
    out = StringIO()
    call_command("replay_callbacks", stdout=out)
    assert "queued 2 of 3" in out.getvalue() and "queued 3 of 3" in out.getvalue()
