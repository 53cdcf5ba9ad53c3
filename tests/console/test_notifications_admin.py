"""The notifications list and page as an operator sees them (Django's test client)."""

import logging
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from django_q.brokers import get_broker

from receipts.models import Receipt, ReceiptState
from sending.models import Notification, NotificationStatus, NotificationType, SendAttempt
from stats.models import DailyStatistics
from tests.stats.factories import notification_make
from webhooks.models import CallbackAttempt, CallbackEvent, CallbackState

LIST = "/admin/sending/notification/"
FIRETEXT_DELIVERED = (
    "mobile=447700900123&status=0&code=000&reference={id}&time=2026-12-01+07%3A00%3A00"
)


def _rows(response) -> str:
    return response.content.decode()


def test_list_masks_recipients_and_shows_no_full_number(admin_client, service):
    sms = notification_make(service=service)
    email = notification_make(service=service, notification_type=NotificationType.EMAIL)
    page = _rows(admin_client.get(LIST))
    assert str(sms.id) in page
    assert str(email.id) in page
    assert "4477******23" in page
    assert "s***@example.com" in page
    assert "447700900123" not in page
    assert "someone@example.com" not in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=technical-failure", {"failed"}),
        ("notification_type__exact=email", {"email"}),
        ("provider=mmg", {"mmg"}),
    ],
)
def test_filters(admin_client, service, query, expected):
    made = {
        "failed": notification_make(service=service, status=NotificationStatus.TECHNICAL_FAILURE),
        "email": notification_make(service=service, notification_type=NotificationType.EMAIL),
        "mmg": notification_make(service=service),
    }
    Notification.objects.filter(id=made["mmg"].id).update(sent_by="mmg")
    page = _rows(admin_client.get(f"{LIST}?{query}"))
    assert {name for name, n in made.items() if str(n.id) in page} == expected


def test_day_filter(admin_client, service):
    today = notification_make(service=service)
    old = notification_make(service=service, created_at=timezone.now() - timedelta(days=3))
    day = timezone.localdate(old.created_at).isoformat()
    page = _rows(admin_client.get(f"{LIST}?day={day}"))
    assert str(old.id) in page
    assert str(today.id) not in page


def test_service_filter(admin_client, service):
    from sending.models import Service

    other = Service.objects.create(name="Other service")
    mine = notification_make(service=service)
    theirs = notification_make(service=other)
    page = _rows(admin_client.get(f"{LIST}?service__id__exact={other.id}"))
    assert str(theirs.id) in page
    assert str(mine.id) not in page


@pytest.mark.parametrize("field", ["id", "client_reference", "provider_reference"])
def test_search_matches_exactly(admin_client, service, field):
    wanted = notification_make(service=service, provider_reference="prov-ref-1")
    other = notification_make(service=service, provider_reference="prov-ref-12")
    Notification.objects.filter(id=wanted.id).update(client_reference="client-ref-1")
    Notification.objects.filter(id=other.id).update(client_reference="client-ref-12")
    term = {"id": str(wanted.id).upper(), "client_reference": "client-ref-1"}.get(
        field, "prov-ref-1"
    )
    page = _rows(admin_client.get(LIST, {"q": term}))
    assert str(wanted.id) in page
    assert str(other.id) not in page


def test_list_queries_do_not_grow_with_rows(admin_client, service, django_assert_max_num_queries):
    for _ in range(30):
        notification_make(service=service)
    with django_assert_max_num_queries(10):
        response = admin_client.get(f"{LIST}?status__exact=sending&provider=firetext&day=")
    assert response.status_code == 200
    assert _rows(response).count("4477******23") == 30


def test_list_never_counts_the_whole_table(admin_client, service, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    notification_make(service=service)
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(LIST)
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts, "the capped count ran"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_timeline_in_time_order_with_attempts_and_masked_receipt(admin_client, service):
    sms = notification_make(service=service, status=NotificationStatus.DELIVERED)
    start = sms.created_at + timedelta(seconds=1)
    SendAttempt.objects.create(
        notification=sms,
        provider="mmg",
        started_at=start,
        duration_ms=10_000,
        outcome="error",
        status_code=504,
        error="Gateway timeout",
    )
    SendAttempt.objects.create(
        notification=sms, provider="firetext", started_at=start + timedelta(seconds=11),
        duration_ms=120, outcome="success",
    )  # fmt: skip
    Receipt.objects.create(
        provider="firetext",
        body=FIRETEXT_DELIVERED.format(id=sms.id),
        content_type="application/x-www-form-urlencoded",
        received_at=start + timedelta(seconds=20),
        state=ReceiptState.PROCESSED,
        reference=str(sms.id),
        outcome="now delivered",
    )
    event = CallbackEvent.objects.create(
        service=service, notification=sms, kind="status", payload={}, state=CallbackState.DELIVERED
    )
    for seconds, code, outcome, error in [
        (22, None, "retry", "ReadTimeout: timed out after 5 s"),
        (21, 503, "retry", ""),  # made out of order: the timeline sorts by time
        (52, 200, "delivered", ""),
    ]:
        CallbackAttempt.objects.create(
            event=event, notification=sms, started_at=start + timedelta(seconds=seconds),
            duration_ms=5000 if code is None else 7, status_code=code, outcome=outcome,
            error=error,
        )  # fmt: skip
    page = _rows(admin_client.get(f"{LIST}{sms.id}/change/"))
    timeline = page[page.index('id="timeline"') :]
    order = [
        timeline.index(s)
        for s in (
            "accepted",
            "mmg: error",
            "firetext: success",
            "Firetext receipt: delivered",
            "status callback to the service: 503",
            "status callback to the service: ReadTimeout",
            "status callback to the service: 200",
        )
    ]
    assert order == sorted(order)
    assert "status code: 504" in timeline
    assert "duration: 10000 ms" in timeline
    assert "code: 000" in timeline
    assert "reason: No error reported" in timeline
    assert "outcome: failed, will retry" in timeline
    assert f"/admin/webhooks/callbackevent/{event.pk}/change/" in timeline
    assert "mobile=4477******23" in timeline
    assert "447700900123" not in page


def test_reveal_needs_its_own_permission_and_is_logged(staff_client, service, caplog):
    sms = notification_make(service=service)
    url = f"{LIST}{sms.id}/reveal/"
    page = _rows(staff_client.get(f"{LIST}{sms.id}/change/"))
    assert "Reveal recipient" not in page
    assert staff_client.post(url).status_code == 403

    user = staff_client.get("/admin/").wsgi_request.user
    user.user_permissions.add(Permission.objects.get(codename="reveal_recipient"))
    assert "Reveal recipient" in _rows(staff_client.get(f"{LIST}{sms.id}/change/"))
    assert staff_client.get(url).status_code == 405
    with caplog.at_level(logging.INFO):
        response = staff_client.post(url)
    assert "447700900123" in _rows(response)
    revealed = [r for r in caplog.records if r.getMessage() == "recipient revealed"]
    assert len(revealed) == 1
    assert (revealed[0].notification_id, revealed[0].user) == (str(sms.id), "viewer")
    assert "447700900123" not in str(vars(revealed[0]))


def _action(client, name, ids, *, follow=False, **extra):
    data = {"action": name, "_selected_action": [str(i) for i in ids], **extra}
    return client.post(LIST, data, follow=follow)


def test_replay_queues_only_stuck_notifications(admin_client, service):
    stuck = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=stuck.id).update(created_at=timezone.now() - timedelta(hours=2))
    held = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=held.id).update(
        lease_until=timezone.now() + timedelta(minutes=1)
    )
    sent = notification_make(service=service)
    broker = get_broker()
    before = broker.queue_size()
    waiting = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=waiting.id).update(
        next_attempt_at=timezone.now() + timedelta(minutes=3), retry_count=2
    )
    ids = [stuck.id, held.id, sent.id, waiting.id]
    asked = _action(admin_client, "replay", ids)
    assert 'name="reason"' in _rows(asked)
    response = _action(admin_client, "replay", ids, follow=True, apply="1", reason="lost tasks")
    # The one waiting for its retry is not silently left out: the answer says what to do.
    assert "Queued 1 notification(s) again. 1 wait for a planned retry: use “Retry now”" in _rows(
        response
    )
    assert broker.queue_size() - before == 1
    history = _rows(admin_client.get(f"/admin/sending/notification/{stuck.id}/history/"))
    assert "replay: lost tasks" in history and "operator" in history


def test_retry_now_sends_a_text_waiting_for_its_planned_retry_and_says_so_in_its_timeline(
    admin_client, service
):
    waiting = notification_make(service=service, status=NotificationStatus.CREATED)
    due_at = timezone.now() + timedelta(minutes=4)
    Notification.objects.filter(id=waiting.id).update(next_attempt_at=due_at, retry_count=3)
    page = _rows(admin_client.get(f"/admin/sending/notification/{waiting.id}/change/"))
    assert "retry planned" in page and "retry 3 planned" in page

    broker = get_broker()
    before = broker.queue_size()
    response = _action(
        admin_client, "retry_now", [waiting.id], follow=True, apply="1", reason="MMG is back"
    )
    assert "Queued 1 notification(s) now." in _rows(response)
    assert broker.queue_size() - before == 1
    waiting.refresh_from_db()
    assert waiting.next_attempt_at <= timezone.now() and waiting.queued_at is not None
    assert waiting.retry_count == 3
    timeline = _rows(admin_client.get(f"/admin/sending/notification/{waiting.id}/change/"))
    assert "retry now: MMG is back" in timeline
    history = _rows(admin_client.get(f"/admin/sending/notification/{waiting.id}/history/"))
    assert "retry now: MMG is back" in history


def test_search_finds_a_recipient_typed_in_any_form_and_still_shows_it_masked(
    admin_client, service
):
    mine = notification_make(service=service)  # 447700900123
    other = notification_make(service=service)
    Notification.objects.filter(id=other.id).update(recipient="447700900999")
    for typed in ("07700 900123", "+44 7700 900123", "447700900123"):
        page = _rows(admin_client.get("/admin/sending/notification/", {"q": typed}))
        assert str(mine.id) in page and str(other.id) not in page, typed
        shown = re.findall(r'<td class="field-to">([^<]*)</td>', page)
        assert shown == ["4477******23"], typed
    email = notification_make(service=service, notification_type="email")
    page = _rows(admin_client.get("/admin/sending/notification/", {"q": "Someone@Example.com"}))
    assert str(email.id) in page and str(mine.id) not in page


def test_mark_technical_failure_asks_why_then_goes_through_the_status_machine(
    admin_client, service
):
    stuck = notification_make(service=service, status=NotificationStatus.SENDING)
    done = notification_make(service=service, status=NotificationStatus.DELIVERED)
    asked = _action(admin_client, "mark_technical_failure", [stuck.id, done.id])
    assert asked.status_code == 200
    assert 'name="reason"' in _rows(asked)
    refused = _action(admin_client, "mark_technical_failure", [stuck.id], apply="1", reason="")
    assert "This field is required" in _rows(refused)
    assert Notification.objects.get(id=stuck.id).status == NotificationStatus.SENDING

    response = _action(
        admin_client,
        "mark_technical_failure",
        [stuck.id, done.id],
        apply="1",
        reason="Firetext lost them",
    )
    assert response.status_code == 302
    stuck.refresh_from_db()
    assert stuck.status == NotificationStatus.TECHNICAL_FAILURE
    assert stuck.provider_status_reason == "admin:operator: Firetext lost them"
    timeline = _rows(admin_client.get(f"/admin/sending/notification/{stuck.id}/change/"))
    assert "marked technical-failure: Firetext lost them" in timeline
    assert Notification.objects.get(id=done.id).status == NotificationStatus.DELIVERED
    day = DailyStatistics.objects.get(service=service, day=timezone.localdate(stuck.created_at))
    assert (day.sms_failed, day.sms_delivered) == (1, 1)


def test_unknown_id_in_search_finds_nothing(admin_client, service):
    notification_make(service=service)
    page = _rows(admin_client.get(LIST, {"q": str(uuid.uuid4())}))
    assert "0 notifications" in page


def test_filters_never_offer_counts(admin_client, service):
    notification_make(service=service)
    page = _rows(admin_client.get(f"{LIST}?_facets=True"))
    assert "Show counts" not in page
    assert "(1)" not in page[page.index('id="changelist-filter"') :]
