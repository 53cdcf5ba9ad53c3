import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.signing import SignedPackage

from sending import engine, services, sweeps
from sending.models import Notification
from stats.models import DailyStatistics


def drains_queued() -> list[tuple]:
    """The tasks waiting in the broker, as (function, arguments)."""
    broker = get_broker()
    tasks = []
    while messages := broker.dequeue():
        for task_id, payload in messages:
            task = SignedPackage.loads(payload)
            tasks.append((task["func"], task["args"]))
            broker.acknowledge(task_id)
    return tasks


SMS_DRAIN = ("sending.tasks.drain_deliveries", ("sms",))


@pytest.fixture(autouse=True)
def _slot_outlives_each_test(monkeypatch):
    """A drain request's slot outlives each test however loaded the machine, so "asking again
    queues nothing" holds between two asks seconds apart (its own short life has its test)."""
    monkeypatch.setattr(engine, "DRAIN_REQUEST_SLOT_SECONDS", 600)


def make(service, **fields) -> Notification:
    n = Notification.objects.create(
        service=service, notification_type="sms", recipient="447700900123", content="hi"
    )
    Notification.objects.filter(id=n.id).update(**fields)
    return n


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def test_replay_asks_for_the_drain_of_what_waits_with_none_coming(service, settings):
    settings.REPLAY_MARGIN_SECONDS = 60
    get_broker().purge_queue()
    lost = make(service, queued_at=ago(seconds=61))
    make(service, queued_at=ago(seconds=50))  # its drain may be on its way
    make(service, queued_at=ago(minutes=90), status="sending")
    make(service, queued_at=None, next_attempt_at=timezone.now() + timedelta(minutes=3))
    make(service, queued_at=ago(minutes=90), lease_until=timezone.now() + timedelta(seconds=30))
    make(service, queued_at=ago(minutes=9), lease_until=ago(seconds=1))  # its drain died

    out = StringIO()
    call_command("replay_notifications", stdout=out)

    assert drains_queued() == [SMS_DRAIN]
    assert "Drain asked for: 2 notification(s) waiting with none coming." in out.getvalue()
    # They keep their place in the queue.
    assert Notification.objects.get(id=lost.id).queued_at < ago(seconds=60)
    # A drain is on its way (its slot is held): asking again queues nothing more.
    assert sweeps.notifications_replay() == 2
    assert drains_queued() == []


def test_a_request_left_waiting_holds_the_slot_only_briefly(service, monkeypatch):
    """A drain request that no worker has started (taken by a busy qcluster, or lost) stops
    other requests for `DRAIN_REQUEST_SLOT_SECONDS` only: then asking queues one again, so an
    idle qcluster is not kept out."""
    monkeypatch.setattr(engine, "DRAIN_REQUEST_SLOT_SECONDS", 1)
    get_broker().purge_queue()
    assert engine.delivery_drain_request("sms") is True
    assert engine.delivery_drain_request("sms") is False  # one is on its way
    deadline = time.monotonic() + 30
    while not engine.delivery_drain_request("sms"):
        assert time.monotonic() < deadline, "the slot never ran out"
        time.sleep(0.2)
    assert drains_queued() == [SMS_DRAIN, SMS_DRAIN]


def test_a_batch_of_a_hundred_texts_queues_one_drain(service, django_capture_on_commit_callbacks):
    get_broker().purge_queue()
    texts = [
        {"notification_type": "sms", "recipient": "447700900123", "content": f"text {i}"}
        for i in range(100)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        services.notifications_create(service=service, notifications=texts)
    with django_capture_on_commit_callbacks(execute=True):
        services.notification_create(
            service=service, notification_type="sms", recipient="447700900123", content="one"
        )

    assert drains_queued() == [SMS_DRAIN]


def test_replay_takes_its_age_from_the_command_line(service):
    get_broker().purge_queue()
    make(service, queued_at=ago(minutes=20))
    make(service, queued_at=ago(minutes=10))
    out = StringIO()
    call_command("replay_notifications", "--older-than", "15", stdout=out)
    assert drains_queued() == [SMS_DRAIN]
    assert "1 notification(s) queued more than 15 minutes ago" in out.getvalue()


def test_due_retries_are_queued(service):
    get_broker().purge_queue()
    due = make(service, queued_at=None, next_attempt_at=ago(seconds=1), retry_count=1)
    make(service, queued_at=None, next_attempt_at=timezone.now() + timedelta(minutes=1))
    assert sweeps.notifications_queue_due_retries() == 1
    assert drains_queued() == [SMS_DRAIN]
    assert Notification.objects.get(id=due.id).queued_at > ago(seconds=10)
    assert sweeps.notifications_queue_due_retries() == 0  # queued once, not every minute


def test_a_pending_notification_never_sent_times_out_from_its_creation(service):
    """A receipt came before the worker wrote down the hand-over (it died): no `sent_at`."""
    old = make(service, status="pending", sent_at=None, created_at=ago(hours=73))
    young = make(service, status="pending", sent_at=None, created_at=ago(hours=71))
    assert sweeps.notifications_timeout() == 1
    statuses = dict(Notification.objects.values_list("id", "status"))
    assert statuses[old.id] == "temporary-failure" and statuses[young.id] == "pending"


def test_timeout_turns_silent_sending_and_pending_into_temporary_failure(service):
    old_sending = make(service, status="sending", sent_at=ago(hours=73))
    old_pending = make(service, status="pending", sent_at=ago(hours=80))
    recent = make(service, status="sending", sent_at=ago(hours=71))
    delivered = make(service, status="delivered", sent_at=ago(hours=90))

    out = StringIO()
    call_command("timeout_notifications", stdout=out)

    statuses = dict(Notification.objects.values_list("id", "status"))
    assert statuses[old_sending.id] == statuses[old_pending.id] == "temporary-failure"
    assert statuses[recent.id] == "sending" and statuses[delivered.id] == "delivered"
    assert "Timed out 2 notification(s)" in out.getvalue()
    assert DailyStatistics.objects.get(service=service).sms_failed == 2

    call_command("timeout_notifications", stdout=StringIO())  # a second run changes nothing
    assert DailyStatistics.objects.get(service=service).sms_failed == 2


def test_progress_is_shown_for_long_runs(service, monkeypatch):
    monkeypatch.setattr(sweeps, "BATCH", 2)
    for _ in range(5):
        make(service, status="sending", sent_at=ago(hours=73))
    out = StringIO()
    call_command("timeout_notifications", stdout=out)
    assert out.getvalue().count("… ") == 2


def test_the_schedules_exist_after_migrating_and_setup_is_idempotent(db):
    # The intervals the contract and docs/delivery.md state, written out, not read from the code.
    expected = {
        "queue due retries": ("sending.tasks.queue_due_retries", 1),
        "check slow delivery": ("sending.tasks.check_slow_delivery", 1),
        "tend back provider priorities": ("sending.tasks.tend_back_priorities", 5),
        "replay stranded notifications": ("sending.tasks.replay_notifications", 1),
        "replay failed receipts": ("receipts.tasks.replay_receipts", 15),
        "drain stranded receipts": ("receipts.tasks.sweep_receipts", 1),
        "send due status callbacks": ("webhooks.tasks.queue_due_callbacks", 1),
        "time out notifications": ("sending.tasks.timeout_notifications", 24 * 60),
        "sweep expired idempotency keys": ("sending.tasks.sweep_idempotency_keys", 60),
    }
    stored = {s.name: (s.func, s.minutes) for s in Schedule.objects.all()}
    assert stored == expected

    Schedule.objects.filter(name="queue due retries").update(minutes=30)
    out = StringIO()
    call_command("setup_schedules", stdout=out)
    call_command("setup_schedules", stdout=StringIO())
    assert Schedule.objects.count() == len(expected)
    assert Schedule.objects.get(name="queue due retries").minutes == 1


def test_every_schedule_runs_a_task_that_exists(db):
    """A schedule naming a function that is gone fails every run, silently but for a log line."""
    from django.utils.module_loading import import_string

    for schedule in Schedule.objects.all():
        assert callable(import_string(schedule.func)), schedule.name


def test_a_deployed_databases_receipt_schedules_follow_the_module(db):
    """A database migrated before `callbacks/` became `receipts/` holds schedules naming
    `callbacks.tasks.…`, which no longer imports: the receipts app's migration rewrites them."""
    from importlib import import_module

    from django.apps import apps
    from django.utils.module_loading import import_string

    for schedule in Schedule.objects.filter(func__startswith="receipts.tasks."):
        schedule.func = schedule.func.replace("receipts.tasks.", "callbacks.tasks.")
        schedule.save()
    migration = import_module("receipts.migrations.0005_schedule_task_paths")

    migration.forwards(apps, None)

    stored = dict(Schedule.objects.values_list("name", "func"))
    assert stored["replay failed receipts"] == "receipts.tasks.replay_receipts"
    assert stored["drain stranded receipts"] == "receipts.tasks.sweep_receipts"
    for name, func in stored.items():
        assert callable(import_string(func)), name
