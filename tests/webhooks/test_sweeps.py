"""Events left behind are sent by the per-minute sweep; one service's endpoint can hold at
most `IN_FLIGHT_PER_SERVICE` attempts; `replay_callbacks` sends given-up events again."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from sending.models import Service
from tests.webhooks.conftest import BEARER_TOKEN, Answer, final_event, send
from tests.webhooks.test_outbox import queued_callbacks
from webhooks import delivery, sweeps
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
    assert queued_callbacks() == [str(event.id)]


def test_a_retry_is_queued_when_due_and_not_before(service, callback, receiver, clock):
    receiver.answer(Answer(503))
    event = final_event(service)
    assert send(event) == CallbackState.RETRYING
    clock.advance(seconds=5)
    assert sweeps.callback_events_queue_due() == 0
    clock.advance(seconds=16)
    assert sweeps.callback_events_queue_due() == 1
    assert queued_callbacks() == [str(event.id)]
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


def test_one_services_endpoint_holds_at_most_its_share_of_workers(
    service, callback, receiver, clock, monkeypatch
):
    monkeypatch.setattr(delivery, "IN_FLIGHT_PER_SERVICE", 1)
    first, second = final_event(service), final_event(service)
    other = Service.objects.create(name="Other service")
    service_callback_set(service=other, url=receiver.url, bearer_token=BEARER_TOKEN)
    theirs = final_event(other)

    assert delivery.callback_event_claim(event_id=str(first.id)) is not None  # in flight
    assert send(second) is None  # waits: the service is at its limit
    second.refresh_from_db()
    assert second.state == CallbackState.PENDING
    assert send(theirs) == CallbackState.DELIVERED  # another service is not held up

    # The sweep queues no more than the limit for the service (`first` is still in flight).
    clock.advance(seconds=11)
    assert sweeps.callback_events_queue_due() == 1  # `theirs` is done: just `second`
    queued_callbacks()

    # When the attempt in flight ends, it queues the service's next waiting event.
    clock.advance(seconds=delivery.LEASE.total_seconds())
    assert send(first) == CallbackState.DELIVERED
    assert queued_callbacks() == [str(second.id)]
    assert send(second) == CallbackState.DELIVERED


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
    assert queued_callbacks() == [str(event.id)]
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

    call_command("replay_callbacks", "--service", "Other service", stdout=StringIO())
    assert queued_callbacks() == [str(theirs.id)]
    call_command("replay_callbacks", "--state", "delivered", stdout=StringIO())
    assert queued_callbacks() == [str(delivered.id)]
    call_command("replay_callbacks", "--since", "2999-01-01T00:00", stdout=StringIO())
    assert queued_callbacks() == []
    call_command("replay_callbacks", "--until", "2999-01-01", "--service", str(service.id),
                 stdout=StringIO())  # fmt: skip
    assert queued_callbacks() == [str(mine.id)]
    with pytest.raises(CommandError, match="no such service"):
        call_command("replay_callbacks", "--service", "nobody")


def test_replay_shows_progress(service, callback, receiver, monkeypatch):
    monkeypatch.setattr(sweeps, "BATCH", 2)
    for _ in range(3):
        given_up(service, receiver)
    out = StringIO()
    call_command("replay_callbacks", stdout=out)
    assert "queued 2 of 3" in out.getvalue() and "queued 3 of 3" in out.getvalue()
