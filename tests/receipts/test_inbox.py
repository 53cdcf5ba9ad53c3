"""The receipt inbox: the post stores the raw receipt and answers; the drain applies what waits, in
batches, asked for once at a time; a receipt left behind is picked up with no command."""

import json
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from receipts import inbox, tasks
from receipts.models import Receipt, ReceiptState
from sending.models import FINAL_STATUSES, Notification, NotificationStatus
from stats.services import daily_statistics_recount
from tests.conftest import FIXTURES
from tests.receipts.conftest import (
    FIRETEXT,
    MMG,
    REFERENCE,
    SES,
    SES_MESSAGE_ID,
    fixture_text,
    inbox_drain,
    post,
    ses_notification,
    sns_envelope,
)
from tests.stats.factories import notification_make, statistics_of
from webhooks.models import CallbackEvent, ServiceCallback

S = NotificationStatus
SUCCESS = {"result": "success"}


@pytest.fixture
def queued(monkeypatch):
    """The drain tasks the inbox hands to the broker (none runs: the test runs the drain)."""
    tasks_queued: list[str] = []
    monkeypatch.setattr(inbox, "async_task", lambda func, **kwargs: tasks_queued.append(func))
    return tasks_queued


def firetext_delivered(notification_id: uuid.UUID) -> str:
    return f"status=0&reference={notification_id}&time=2016-03-10+14:17:00"


def test_the_post_stores_and_answers_and_the_drain_applies(service):
    sent = notification_make(service=service, notification_id=REFERENCE, called="firetext")

    response = post(FIRETEXT, fixture_text("firetext", "delivered.txt"), drain=False)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    receipt = Receipt.objects.get()
    assert (receipt.state, receipt.outcome) == (ReceiptState.RECEIVED, "")
    assert Notification.objects.get(id=sent.id).status == S.SENDING

    inbox_drain()

    receipt.refresh_from_db()
    assert (receipt.state, receipt.outcome) == (ReceiptState.PROCESSED, "now delivered")
    assert (receipt.attempts, receipt.reference) == (1, str(REFERENCE))
    assert Notification.objects.get(id=sent.id).status == S.DELIVERED
    assert statistics_of(service)["sms_delivered"] == 1


def test_the_post_is_one_insert(service, django_assert_max_num_queries):
    notification_make(service=service, notification_id=REFERENCE, called="firetext")
    body = fixture_text("firetext", "delivered.txt")

    with django_assert_max_num_queries(1):
        assert post(FIRETEXT, body, drain=False).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_one_drain_is_asked_for_however_many_receipts_wait(service, queued):
    for _ in range(5):
        notification = notification_make(service=service, called="firetext")
        post(FIRETEXT, firetext_delivered(notification.id), drain=False)

    assert queued == ["receipts.tasks.drain_receipts"]

    assert tasks.drain_receipts() == 5  # the task, run by a worker
    assert set(Notification.objects.values_list("status", flat=True)) == {S.DELIVERED}
    later = notification_make(service=service, called="firetext")
    post(FIRETEXT, firetext_delivered(later.id), drain=False)
    assert queued == ["receipts.tasks.drain_receipts"] * 2  # the slot was given back


def test_the_drain_goes_on_looking_after_giving_its_slot_back(service, queued, monkeypatch):
    """A receipt stored after the drain's last claim, whose request found the slot held, is not
    left for the sweep nor for another drain request: the drain goes on looking once it has
    given its slot back, and applies it."""
    first = notification_make(service=service, called="firetext")
    late = notification_make(service=service, called="firetext")
    post(FIRETEXT, firetext_delivered(first.id), drain=False)
    drain = inbox.receipts_drain
    runs = []

    def drain_then_one_more_arrives(**kwargs):
        states = drain(**kwargs)
        if not runs:
            post(FIRETEXT, firetext_delivered(late.id), drain=False)
        runs.append(cache.get(inbox._SLOT_KEY))
        return states

    monkeypatch.setattr(tasks, "receipts_drain", drain_then_one_more_arrives)
    assert tasks.drain_receipts() == 2

    assert runs[1] is None  # the late one was applied after the slot was given back
    assert Notification.objects.get(id=late.id).status == S.DELIVERED
    assert queued == []  # nothing left: no drain asked for


def test_a_receipt_committed_after_a_younger_one_is_taken_by_the_same_drain(
    service, queued, monkeypatch
):
    """Receipts are stamped when they arrive and committed a moment later: one stamped before a
    batch the drain claimed, but committed after it, is taken at the next batch, not left until
    the stream of receipts stops."""
    first = notification_make(service=service, called="firetext")
    slow = notification_make(service=service, called="firetext")
    post(FIRETEXT, firetext_delivered(first.id), drain=False)
    apply = inbox.receipts_apply
    arrived = []

    def apply_while_a_slow_one_commits(claimed, **kwargs):
        if not arrived:
            post(FIRETEXT, firetext_delivered(slow.id), drain=False)
            arrived.append(Receipt.objects.latest("id"))
            Receipt.objects.filter(pk=arrived[0].pk).update(
                received_at=claimed[0].received_at - timedelta(milliseconds=5)
            )
        return apply(claimed, **kwargs)

    monkeypatch.setattr(inbox, "receipts_apply", apply_while_a_slow_one_commits)

    assert tasks.drain_receipts() == 2
    assert Notification.objects.get(id=slow.id).status == S.DELIVERED


def test_a_receipt_left_waiting_is_swept_with_no_command(service, queued):
    """The web process died after its insert, or the broker was down: the receipt is stored
    `received` and nobody asked for a drain. The per-minute sweep asks, once it has settled."""
    sent = notification_make(service=service, notification_id=REFERENCE, called="firetext")
    post(FIRETEXT, fixture_text("firetext", "delivered.txt"), drain=False)

    assert tasks.sweep_receipts() is False  # too young: its request may be on its way
    assert queued == []

    Receipt.objects.update(received_at=timezone.now() - tasks.SETTLE - timedelta(seconds=1))
    assert tasks.sweep_receipts() is True
    assert queued == ["receipts.tasks.drain_receipts"]
    tasks.drain_receipts()
    assert Notification.objects.get(id=sent.id).status == S.DELIVERED


def test_receipts_for_one_notification_in_one_batch_apply_in_order(service):
    """Pending then delivered in the same batch: delivered, counted once, one callback event;
    another provider's receipt beside them is ignored, with why."""
    ServiceCallback.objects.create(
        service=service, url="https://example.com/cb", bearer_token="a-long-enough-token"
    )
    sent = notification_make(service=service, notification_id=REFERENCE, called="firetext")
    post(FIRETEXT, fixture_text("firetext", "pending.txt"), drain=False)
    post(FIRETEXT, fixture_text("firetext", "delivered.txt"), drain=False)
    post(MMG, fixture_text("mmg", "permanent_failure.json"), drain=False)

    states = inbox_drain()

    assert Notification.objects.get(id=sent.id).status == S.DELIVERED
    assert statistics_of(service)["sms_delivered"] == 1
    assert CallbackEvent.objects.filter(notification_id=sent.id).count() == 1
    assert (states[ReceiptState.PROCESSED], states[ReceiptState.IGNORED]) == (2, 1)
    assert list(Receipt.objects.order_by("id").values_list("state", "outcome")) == [
        (ReceiptState.PROCESSED, "now pending"),
        (ReceiptState.PROCESSED, "now delivered"),
        (ReceiptState.IGNORED, "ignored: mmg receipt for a text sent by firetext"),
    ]


def test_a_batch_of_receipts_costs_a_tenth_of_the_queries_of_one_at_a_time(service):
    singles = [notification_make(service=service, called="firetext") for _ in range(10)]
    batch = [notification_make(service=service, called="firetext") for _ in range(100)]

    alone = 0
    for notification in singles:
        post(FIRETEXT, firetext_delivered(notification.id), drain=False)
        with CaptureQueriesContext(connection) as one:
            inbox_drain()
        alone += len(one)
    for notification in batch:
        post(FIRETEXT, firetext_delivered(notification.id), drain=False)
    with CaptureQueriesContext(connection) as batched:
        inbox_drain()

    assert len(batched) <= (alone / len(singles)) * len(batch) / 10
    assert Notification.objects.filter(status=S.DELIVERED).count() == 110


def _fixtures():
    for path in sorted((FIXTURES / "firetext_receipts").iterdir()):
        yield pytest.param(
            FIRETEXT, path.read_text(), "sms", "firetext", id=f"firetext-{path.name}"
        )
    for path in sorted((FIXTURES / "mmg_receipts").iterdir()):
        yield pytest.param(MMG, path.read_text(), "sms", "mmg", id=f"mmg-{path.name}")
    for path in sorted((FIXTURES / "ses_receipts").iterdir()):
        if path.name in ("mail.json", "truncated_json.txt") or path.name.startswith("sns_"):
            continue
        body = json.dumps(sns_envelope(ses_notification(path.name)))
        yield pytest.param(SES, body, "email", "ses", id=f"ses-{path.name}")


STARTS = [None, S.CREATED, S.SENDING, S.PENDING, S.DELIVERED, S.PERMANENT_FAILURE]
CALLED = ["own", "another provider", "never"]


@pytest.mark.parametrize("called", CALLED)
@pytest.mark.parametrize("start", STARTS, ids=lambda s: s or "none")
@pytest.mark.parametrize(("endpoint", "body", "kind", "provider"), list(_fixtures()))
def test_every_receipt_is_stored_and_keeps_the_statistics_true(
    service, endpoint, body, kind, provider, start, called
):
    """What the comparison of the two receipt paths checked, of the one path left: every
    receipt is stored once and answered, a notification only moves forward and only on its
    own provider's receipt, and the statistics stay equal to a recount."""
    others = {"firetext": "mmg", "mmg": "firetext", "ses": ()}
    providers = {"own": provider, "another provider": others[provider], "never": ()}[called]
    if start is not None:
        notification_make(
            service=service,
            notification_type=kind,
            status=start,
            notification_id=REFERENCE,
            provider_reference=SES_MESSAGE_ID,
            called=providers,
        )

    response = post(endpoint, body)

    assert response.status_code in (200, 400)
    receipt = Receipt.objects.get()
    assert receipt.state != ReceiptState.RECEIVED
    now = Notification.objects.filter(id=REFERENCE).values_list("status", flat=True).first()
    if start is None or called != "own" or receipt.state == ReceiptState.REJECTED:
        assert now == start
    else:
        assert now == start or now in (S.PENDING, *FINAL_STATUSES)
    if called != "own" and start is not None and receipt.state == ReceiptState.PROCESSED:
        assert not receipt.outcome.startswith("now ")
    assert statistics_of(service) == daily_statistics_recount(day=timezone.localdate()).get(
        service.id, statistics_of(service)
    )


def test_a_drain_under_steady_load_ends_in_time_and_asks_for_the_next(service, queued, settings):
    """A drain never runs until django-q kills it (its batch rolled back, its slot held for a
    whole lease): past half the task timeout it starts no batch, and asks for the next drain."""
    sent = notification_make(service=service, notification_id=REFERENCE, called="firetext")
    post(FIRETEXT, fixture_text("firetext", "delivered.txt"), drain=False)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 0}

    assert tasks.drain_receipts() == 0

    assert Receipt.objects.get().state == ReceiptState.RECEIVED
    assert queued == ["receipts.tasks.drain_receipts"]
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 60}
    assert tasks.drain_receipts() == 1
    assert Notification.objects.get(id=sent.id).status == S.DELIVERED
