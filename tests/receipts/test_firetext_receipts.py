"""Firetext receipts (contract section 6), posted as Firetext posts them."""

import logging
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import pytest

from receipts.models import Receipt, ReceiptState
from sending.models import Notification, NotificationStatus
from sending.status import notification_update_status
from tests.receipts.conftest import FIRETEXT, REFERENCE, fixture_text, post
from tests.receipts.receipt_cases import ReceiptCases
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus
SUCCESS = {"result": "success"}


def firetext(name: str, **changes) -> str:
    """A fixture body with some fields changed, still in Firetext's field order."""
    fields = dict(parse_qsl(fixture_text("firetext", name), keep_blank_values=True))
    fields.update(changes)
    return urlencode(fields)


def notification(service, status=S.SENDING):
    return notification_make(
        service=service, status=status, notification_id=REFERENCE, called="firetext"
    )


def stored(notification) -> Notification:
    return Notification.objects.get(id=notification.id)


def test_delivered_receipt_is_stored_applied_and_counted(service):
    sent = notification(service)
    body = fixture_text("firetext", "delivered.txt")

    response = post(FIRETEXT, body)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    assert stored(sent).status == S.DELIVERED
    assert statistics_of(service)["sms_delivered"] == 1
    receipt = Receipt.objects.get()
    assert (receipt.provider, receipt.body, receipt.state) == ("firetext", body, "processed")
    assert receipt.content_type == "application/x-www-form-urlencoded"
    assert receipt.reference == str(REFERENCE)
    # 14:17 on 10 March is GMT in the UK
    assert receipt.reported_at == datetime(2016, 3, 10, 14, 17, tzinfo=UTC)


# The code table of contract section 6, written out here rather than read from the code.
CODE_TABLE = [
    ("000", "No error reported", S.TEMPORARY_FAILURE),
    ("101", "Unknown Subscriber", S.PERMANENT_FAILURE),
    ("102", "Absent Subscriber", S.TEMPORARY_FAILURE),
    ("103", "Subscriber Busy", S.TEMPORARY_FAILURE),
    ("104", "No Subscriber Memory", S.TEMPORARY_FAILURE),
    ("201", "Invalid Number", S.PERMANENT_FAILURE),
    ("301", "SMS Not Supported", S.PERMANENT_FAILURE),
    ("302", "SMS Not Supported", S.TEMPORARY_FAILURE),
    ("401", "Message Rejected", S.PERMANENT_FAILURE),
    ("900", "Routing Error", S.TEMPORARY_FAILURE),
]


@pytest.mark.parametrize("start", [S.SENDING, S.PENDING])
@pytest.mark.parametrize(("code", "reason", "expected"), CODE_TABLE)
def test_declined_receipt_takes_the_status_its_code_gives(service, start, code, reason, expected):
    sent = notification(service, start)

    response = post(FIRETEXT, firetext("declined_unknown_subscriber.txt", code=code))

    assert response.status_code == 200
    after = stored(sent)
    assert (after.status, after.provider_status_code, after.provider_status_reason) == (
        expected,
        code,
        reason,
    )
    assert statistics_of(service)["sms_failed"] == 1


@pytest.mark.parametrize("name", ["declined_no_code.txt", "declined_unknown_code.txt"])
@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (S.SENDING, S.PERMANENT_FAILURE),
        (S.CREATED, S.PERMANENT_FAILURE),
        (S.PENDING, S.TEMPORARY_FAILURE),
    ],
)
def test_declined_without_a_known_code_is_permanent_or_temporary_from_pending(
    service, name, start, expected
):
    sent = notification(service, start)

    assert post(FIRETEXT, fixture_text("firetext", name)).status_code == 200
    assert stored(sent).status == expected
    assert statistics_of(service)["sms_failed"] == 1


def test_an_unknown_code_is_logged_as_a_warning_and_kept(service, caplog):
    sent = notification(service)

    post(FIRETEXT, fixture_text("firetext", "declined_unknown_code.txt"))

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["firetext receipt with unknown code"]
    assert warnings[0].code == "555"
    assert stored(sent).provider_status_code == "555"


def test_the_detailed_status_is_logged_with_every_receipt(service, caplog):
    notification(service)
    caplog.set_level(logging.INFO, logger="receipts")

    post(FIRETEXT, fixture_text("firetext", "declined_unknown_subscriber.txt"))

    [line] = [r for r in caplog.records if r.getMessage() == "receipt processed"]
    assert (line.provider_status, line.code, line.reason, line.status) == (
        "1",
        "101",
        "Unknown Subscriber",
        S.PERMANENT_FAILURE,
    )
    assert "447700900123" not in caplog.text


def test_pending_then_delivered(service):
    sent = notification(service)

    assert post(FIRETEXT, fixture_text("firetext", "pending.txt")).status_code == 200
    after = stored(sent)
    assert (after.status, after.provider_status_reason) == (S.PENDING, "Absent Subscriber")
    assert statistics_of(service)["sms_delivered"] + statistics_of(service)["sms_failed"] == 0

    assert post(FIRETEXT, fixture_text("firetext", "delivered.txt")).status_code == 200
    assert stored(sent).status == S.DELIVERED
    assert statistics_of(service)["sms_delivered"] == 1


def test_a_permanent_failure_never_becomes_delivered(service):
    sent = notification(service)

    post(FIRETEXT, fixture_text("firetext", "declined_unknown_subscriber.txt"))
    response = post(FIRETEXT, fixture_text("firetext", "delivered.txt"))

    assert (response.status_code, response.json()) == (200, SUCCESS)
    assert stored(sent).status == S.PERMANENT_FAILURE
    stats = statistics_of(service)
    assert (stats["sms_failed"], stats["sms_delivered"]) == (1, 0)
    assert Receipt.objects.order_by("id").last().outcome == "unchanged: already permanent-failure"


def test_a_late_pending_does_not_reopen_a_delivered_notification(service):
    sent = notification(service)

    post(FIRETEXT, fixture_text("firetext", "delivered.txt"))
    post(FIRETEXT, fixture_text("firetext", "pending.txt"))

    assert stored(sent).status == S.DELIVERED


def test_a_receipt_before_sending_wins_over_the_late_sending_update(service):
    created = notification(service, S.CREATED)

    assert post(FIRETEXT, fixture_text("firetext", "delivered.txt")).status_code == 200
    # The worker that handed it to Firetext now tries to mark it sending.
    assert notification_update_status(notification_id=created.id, status=S.SENDING) is None

    assert stored(created).status == S.DELIVERED
    assert statistics_of(service)["sms_delivered"] == 1


def test_duplicate_receipts_change_and_count_nothing_more(service):
    notification(service)
    body = fixture_text("firetext", "delivered.txt")

    answers = [post(FIRETEXT, body) for _ in range(3)]

    assert [(a.status_code, a.json()) for a in answers] == [(200, SUCCESS)] * 3
    assert statistics_of(service)["sms_delivered"] == 1
    assert Receipt.objects.filter(state=ReceiptState.PROCESSED).count() == 3


def test_a_well_formed_id_we_do_not_have_is_accepted_logged_and_stored(service, caplog):
    body = fixture_text("firetext", "unknown_notification.txt")

    response = post(FIRETEXT, body)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    receipt = Receipt.objects.get()
    assert (receipt.body, receipt.state, receipt.outcome) == (
        body,
        "processed",
        "unknown notification",
    )
    assert "receipt for unknown notification" in caplog.messages


def test_an_unknown_status_is_a_technical_failure_logged_as_an_error(service, caplog):
    sent = notification(service)

    response = post(FIRETEXT, fixture_text("firetext", "unknown_status.txt"))

    assert response.status_code == 400
    assert response.json() == {
        "result": "error",
        "message": ["Firetext callback failed: status 9 not found"],
    }
    assert stored(sent).status == S.TECHNICAL_FAILURE
    assert statistics_of(service)["sms_failed"] == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "firetext receipt with unknown status" in errors
    assert Receipt.objects.get().state == ReceiptState.PROCESSED


def test_uk_local_time_in_summer_is_an_hour_ahead_of_utc(service):
    notification(service)

    post(FIRETEXT, firetext("delivered.txt", time="2016-06-10 14:17:00"))

    assert Receipt.objects.get().reported_at == datetime(2016, 6, 10, 13, 17, tzinfo=UTC)


@pytest.mark.parametrize("name", ["delivered_ambiguous_time.txt", "delivered_without_time.txt"])
def test_an_ambiguous_or_missing_time_is_still_accepted(service, name):
    sent = notification(service)

    assert post(FIRETEXT, fixture_text("firetext", name)).status_code == 200
    assert stored(sent).status == S.DELIVERED


BAD_INPUT = [
    ("missing_status.txt", None, ["Firetext callback failed: status missing"]),
    ("missing_reference.txt", None, ["Firetext callback failed: reference missing"]),
    ("empty_reference.txt", None, ["Firetext callback failed: reference missing"]),
    (
        "missing_status_and_reference.txt",
        None,
        ["Firetext callback failed: status missing", "Firetext callback failed: reference missing"],
    ),
    ("reference_not_uuid.txt", None, ["Firetext callback failed: reference is not a UUID"]),
    ("not_form.txt", None, ["Firetext callback failed: body is not form-encoded"]),
    ("not_utf8_escape.txt", None, ["Firetext callback failed: body is not form-encoded"]),
    (
        "json_body.json",
        "application/json",
        [
            "Firetext callback failed: content type application/json not supported "
            "(expected application/x-www-form-urlencoded)"
        ],
    ),
    (
        "delivered.txt",
        "text/plain",
        [
            "Firetext callback failed: content type text/plain not supported "
            "(expected application/x-www-form-urlencoded)"
        ],
    ),
]


@pytest.mark.parametrize(("name", "content_type", "messages"), BAD_INPUT)
def test_bad_input_is_refused_and_still_stored(service, name, content_type, messages):
    sent = notification(service)
    body = fixture_text("firetext", name)

    response = post(FIRETEXT, body, content_type)

    assert response.status_code == 400
    assert response.json() == {"result": "error", "message": messages}
    receipt = Receipt.objects.get()
    assert (receipt.body, receipt.state) == (body, ReceiptState.REJECTED)
    assert stored(sent).status == S.SENDING


def test_a_body_that_is_not_utf8_is_refused_and_stored_readably(service):
    response = post(FIRETEXT, b"status=0&reference=\xff\xfe\x00")

    assert response.status_code == 400
    assert Receipt.objects.get().body == "status=0&reference=\ufffd\ufffd\ufffd"


def test_a_body_over_1_mb_is_refused_unread(service, settings):
    body = firetext("delivered.txt", padding="x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE)

    response = post(FIRETEXT, body)

    assert response.status_code == 413
    assert response.json() == {
        "result": "error",
        "message": ["Firetext callback failed: body over 1048576 bytes"],
    }
    assert not Receipt.objects.exists()


def test_an_accept_header_does_not_stop_the_json_answer(service):
    notification(service)

    response = post(FIRETEXT, fixture_text("firetext", "delivered.txt"), HTTP_ACCEPT="text/html")

    assert (response.status_code, response.json()) == (200, SUCCESS)


def test_metrics_count_the_receipt_and_time_it_from_sending(service, statsd):
    notification(service)

    post(FIRETEXT, fixture_text("firetext", "delivered.txt"))

    lines = statsd.received()
    assert "notify.callback.firetext.delivered:1|c" in lines
    assert any(
        line.startswith("notify.callback.firetext.delivered.elapsed-time:") for line in lines
    )


class TestFiretextReceiptCases(ReceiptCases):
    endpoint = FIRETEXT
    provider = "firetext"
    display_name = "Firetext"
    missing_status_message = "Firetext callback failed: status missing"
    missing_id_message = "Firetext callback failed: reference missing"

    def delivered(self, reference=REFERENCE):
        return firetext("delivered.txt", reference=str(reference))

    def without_status(self):
        return fixture_text("firetext", "missing_status.txt")

    def without_id(self):
        return fixture_text("firetext", "missing_reference.txt")

    def with_bad_time(self):
        return fixture_text("firetext", "time_not_a_time.txt")
