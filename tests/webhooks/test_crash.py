"""A process SIGKILLed between the status change and the send loses no callback: the change
and its event committed together, and the sweep sends the event."""

import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.signing import SignedPackage

from sending.status import notification_update_status
from tests.conftest import REPO_ROOT, subprocess_env
from tests.webhooks.conftest import callbacks_broker, text
from webhooks import delivery, sweeps
from webhooks.models import CallbackEvent, CallbackState
from webhooks.outbox import callback_drain_slot_free
from webhooks.tasks import drain_callbacks

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Run in a child process: apply a delivery, and die by SIGKILL at the moment the event's drain
# would be asked for (its transaction has committed; no task reaches the broker).
KILLED_AFTER_COMMIT = """
import os, signal, uuid
from webhooks import outbox
from sending.status import notification_update_status
outbox.callback_drain_request = lambda **kwargs: os.kill(os.getpid(), signal.SIGKILL)
notification_update_status(notification_id=uuid.UUID("{id}"), status="delivered")
"""

# Or die after claiming the event, before the POST.
KILLED_AFTER_CLAIM = """
import os, signal
from webhooks.delivery import callback_event_claim
callback_event_claim(event_id="{id}")
os.kill(os.getpid(), signal.SIGKILL)
"""


def run_and_get_killed(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO_ROOT,
        env=subprocess_env(SERVICE_CALLBACK_ALLOW_INSECURE="true", LOG_LEVEL="WARNING"),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]


def run_queued_tasks() -> int:
    """What a worker does: take each queued callback drain and run it."""
    broker = callbacks_broker()
    ran = 0
    while messages := broker.dequeue():
        for task_id, payload in messages:
            task = SignedPackage.loads(payload)
            if task["func"] == "webhooks.tasks.drain_callbacks":
                drain_callbacks(*task["args"])
                ran += 1
            broker.acknowledge(task_id)
    return ran


@pytest.fixture(autouse=True)
def empty_queue():
    callbacks_broker().purge_queue()


def test_killed_after_the_status_change_the_sweep_sends_it(
    service, callback, receiver, monkeypatch
):
    sent = text(service, status="sending", sent_at=timezone.now())
    run_and_get_killed(KILLED_AFTER_COMMIT.format(id=sent.id))

    sent.refresh_from_db()
    assert sent.status == "delivered"
    event = CallbackEvent.objects.get(notification=sent)
    assert event.state == CallbackState.PENDING
    assert run_queued_tasks() == 0 and receiver.received == []

    later = timezone.now() + sweeps.SETTLE + timedelta(seconds=1)
    monkeypatch.setattr(sweeps, "now", lambda: later)
    assert sweeps.callback_events_queue_due() == 1
    assert run_queued_tasks() == 1
    (request,) = receiver.received
    assert request.headers["webhook-id"] == str(event.id)
    event.refresh_from_db()
    assert event.state == CallbackState.DELIVERED


def test_killed_after_claiming_the_sweep_sends_it_once_the_lease_ends(
    service, callback, receiver, monkeypatch
):
    sent = text(service, status="sending", sent_at=timezone.now())
    notification_update_status(notification_id=sent.id, status="delivered")
    event = CallbackEvent.objects.get(notification=sent)
    callbacks_broker().purge_queue()  # as if the drain was the one the dead worker took
    run_and_get_killed(KILLED_AFTER_CLAIM.format(id=event.id))
    callback_drain_slot_free(service_id=service.id, slot=0)  # it runs out with the lease
    event.refresh_from_db()
    assert event.state == CallbackState.SENDING

    later = timezone.now() + delivery.LEASE + timedelta(seconds=1)
    for module in (sweeps, delivery):
        monkeypatch.setattr(module, "now", lambda: later)
    assert sweeps.callback_events_queue_due() == 1
    assert run_queued_tasks() == 1
    assert len(receiver.received) == 1
    event.refresh_from_db()
    assert (event.state, event.attempts) == (CallbackState.DELIVERED, 1)
