from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.signing import SignedPackage

from sending import sweeps
from sending.models import Notification
from sending.schedules import SCHEDULES
from stats.models import DailyStatistics


def queued_ids() -> list[str]:
    broker = get_broker()
    ids = []
    while messages := broker.dequeue():
        for task_id, payload in messages:
            ids.append(SignedPackage.loads(payload)["args"][0])
            broker.acknowledge(task_id)
    return ids


def make(service, **fields) -> Notification:
    n = Notification.objects.create(
        service=service, notification_type="sms", recipient="447700900123", content="hi"
    )
    Notification.objects.filter(id=n.id).update(**fields)
    return n


def ago(**delta):
    return timezone.now() - timedelta(**delta)


def test_replay_requeues_created_older_than_an_hour_and_nothing_else(service):
    get_broker().purge_queue()
    stranded = make(service, created_at=ago(minutes=61))
    make(service, created_at=ago(minutes=59))
    make(service, created_at=ago(minutes=90), status="sending")
    make(service, created_at=ago(minutes=90), next_attempt_at=timezone.now() + timedelta(minutes=3))
    make(service, created_at=ago(minutes=90), lease_until=timezone.now() + timedelta(seconds=30))

    out = StringIO()
    call_command("replay_notifications", stdout=out)

    assert queued_ids() == [str(stranded.id)]
    assert "Re-queued 1 notification(s) created more than 60 minutes ago." in out.getvalue()


def test_replay_takes_its_age_from_the_command_line(service):
    get_broker().purge_queue()
    make(service, created_at=ago(minutes=20))
    out = StringIO()
    call_command("replay_notifications", "--older-than", "15", stdout=out)
    assert len(queued_ids()) == 1


def test_due_retries_are_queued(service):
    get_broker().purge_queue()
    due = make(service, next_attempt_at=ago(seconds=1), retry_count=1)
    make(service, next_attempt_at=timezone.now() + timedelta(minutes=1), retry_count=1)
    assert sweeps.notifications_queue_due_retries() == 1
    assert queued_ids() == [str(due.id)]


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
    # The intervals the contract and the README state, written out rather than read from the code.
    expected = {
        "queue due retries": ("sending.tasks.queue_due_retries", 1),
        "check slow delivery": ("sending.tasks.check_slow_delivery", 1),
        "tend back provider priorities": ("sending.tasks.tend_back_priorities", 5),
        "replay stranded notifications": ("sending.tasks.replay_notifications", 15),
        "replay failed receipts": ("callbacks.tasks.replay_receipts", 15),
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
    assert Schedule.objects.count() == len(SCHEDULES)
    assert Schedule.objects.get(name="queue due retries").minutes == 1
