"""MMG receipts (contract section 6), posted as MMG posts them."""

import json
import logging
from datetime import UTC, datetime

import pytest

from receipts.models import Receipt, ReceiptState
from sending.models import Notification, NotificationStatus
from tests.receipts.conftest import MMG, REFERENCE, fixture_text, post
from tests.receipts.receipt_cases import ReceiptCases
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus
SUCCESS = {"result": "success"}


def mmg(name: str, **changes) -> str:
    return json.dumps({**json.loads(fixture_text("mmg", name)), **changes})


def notification(service, status=S.SENDING):
    return notification_make(
        service=service, status=status, notification_id=REFERENCE, called="mmg"
    )


def stored(notification) -> Notification:
    return Notification.objects.get(id=notification.id)


# The table of contract section 6, written out here rather than read from the code.
STATUS_TABLE = [
    *[
        ("2", sub, S.PERMANENT_FAILURE, reason)
        for sub, reason in [
            ("1", "Number does not exist"),
            ("4", "Rejected by operator"),
            ("5", "Unidentified Subscriber"),
            ("9", "Undelivered"),
            ("11", "Service suspended"),
            ("12", "Illegal equipment"),
            ("2049", "Blacklisted"),
            ("2050", "Blacklisted"),
            ("2052", "Blacklisted"),
            ("2053", "Blacklisted"),
        ]
    ],
    ("3", "2", S.DELIVERED, "Delivered to operator"),
    ("3", "5", S.DELIVERED, "Delivered to handset"),
    *[
        ("4", sub, S.TEMPORARY_FAILURE, reason)
        for sub, reason in [
            ("6", "Absent Subscriber"),
            ("27", "Absent Subscriber"),
            ("8", "Roaming not allowed"),
            ("13", "SMS Not Supported"),
            ("15", "Expired"),
            ("29", "Invalid delivery report"),
            ("32", "Delivery Failure"),
        ]
    ],
    *[
        ("5", sub, S.PERMANENT_FAILURE, reason)
        for sub, reason in [
            ("6", "Network out of coverage"),
            ("8", "Incorrect prefix"),
            ("10", "DND"),
            ("11", "Sender id not registered"),
            ("13", "Sender id blacklisted"),
            ("14", "Dest blacklisted"),
            ("19", "Routing unavailable"),
            ("20", "Anti-flooding"),
            ("21", "System error"),
            ("23", "Duplicate msg id"),
            ("24", "Formatted incorrectly"),
            ("25", "Too long"),
            ("51", "Missing recipient"),
            ("52", "Invalid destination"),
        ]
    ],
]


@pytest.mark.parametrize(("status", "substatus", "expected", "reason"), STATUS_TABLE)
def test_every_status_and_substatus(service, status, substatus, expected, reason):
    sent = notification(service)

    response = post(MMG, mmg("delivered.json", status=status, substatus=substatus))

    assert (response.status_code, response.json()) == (200, SUCCESS)
    after = stored(sent)
    assert (after.status, after.provider_status_code, after.provider_status_reason) == (
        expected,
        f"{status}/{substatus}",
        reason,
    )
    column = "sms_delivered" if expected == S.DELIVERED else "sms_failed"
    assert statistics_of(service)[column] == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("delivered.json", S.DELIVERED),
        ("delivered_numbers.json", S.DELIVERED),
        ("delivered_offset_time.json", S.DELIVERED),
        ("permanent_failure.json", S.PERMANENT_FAILURE),
        ("temporary_failure.json", S.TEMPORARY_FAILURE),
    ],
)
def test_fixture_receipts(service, name, expected):
    sent = notification(service)
    body = fixture_text("mmg", name)

    assert post(MMG, body).json() == SUCCESS
    assert stored(sent).status == expected
    receipt = Receipt.objects.get()
    assert (receipt.provider, receipt.body, receipt.state) == ("mmg", body, "processed")


def test_deliverytime_is_uk_local_time_or_carries_its_offset(service):
    notification(service)

    post(MMG, fixture_text("mmg", "delivered.json"))  # 16:01:07 in April: BST
    post(MMG, fixture_text("mmg", "delivered_offset_time.json"))  # 16:01:07+0200

    times = list(Receipt.objects.order_by("id").values_list("reported_at", flat=True))
    assert times == [
        datetime(2016, 4, 5, 15, 1, 7, tzinfo=UTC),
        datetime(2016, 4, 5, 14, 1, 7, tzinfo=UTC),
    ]


def test_an_unknown_substatus_is_kept_and_logged_as_a_warning(service, caplog):
    sent = notification(service)

    assert post(MMG, fixture_text("mmg", "unknown_substatus.json")).status_code == 200

    after = stored(sent)
    assert (after.status, after.provider_status_code) == (S.TEMPORARY_FAILURE, "4/99")
    assert "mmg receipt with unknown substatus" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    ]


def test_an_unknown_status_is_a_technical_failure_logged_as_an_error(service, caplog):
    sent = notification(service)

    response = post(MMG, fixture_text("mmg", "unknown_status.json"))

    assert response.status_code == 400
    assert response.json() == {
        "result": "error",
        "message": ["MMG callback failed: status 9 not found"],
    }
    assert stored(sent).status == S.TECHNICAL_FAILURE
    assert statistics_of(service)["sms_failed"] == 1
    assert "mmg receipt with unknown status" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    ]


def test_duplicates_and_out_of_order_receipts(service):
    sent = notification(service)

    for name in ["permanent_failure.json", "permanent_failure.json", "delivered.json"]:
        assert post(MMG, fixture_text("mmg", name)).json() == SUCCESS

    assert stored(sent).status == S.PERMANENT_FAILURE
    stats = statistics_of(service)
    assert (stats["sms_failed"], stats["sms_delivered"]) == (1, 0)


def test_a_receipt_before_sending(service):
    created = notification(service, S.CREATED)

    assert post(MMG, fixture_text("mmg", "delivered.json")).json() == SUCCESS
    assert stored(created).status == S.DELIVERED


def test_a_well_formed_id_we_do_not_have(service, caplog):
    response = post(MMG, fixture_text("mmg", "unknown_notification.json"))

    assert (response.status_code, response.json()) == (200, SUCCESS)
    assert Receipt.objects.get().outcome == "unknown notification"
    assert "receipt for unknown notification" in caplog.messages


BAD_INPUT = [
    ("missing_status.json", None, ["MMG callback failed: status missing"]),
    ("missing_cid.json", None, ["MMG callback failed: CID missing"]),
    ("empty_cid.json", None, ["MMG callback failed: CID missing"]),
    (
        "missing_status_and_cid.json",
        None,
        ["MMG callback failed: status missing", "MMG callback failed: CID missing"],
    ),
    ("cid_not_uuid.json", None, ["MMG callback failed: CID is not a UUID"]),
    (
        "status_not_text.json",
        None,
        ["MMG callback failed: status must be a string or a whole number"],
    ),
    ("truncated_json.txt", None, ["MMG callback failed: invalid json"]),
    ("array.json", None, ["MMG callback failed: invalid json (expected an object)"]),
    (
        "form_body.txt",
        "application/x-www-form-urlencoded",
        [
            "MMG callback failed: content type application/x-www-form-urlencoded not supported "
            "(expected application/json or text/plain)"
        ],
    ),
    (
        "delivered.json",
        "",
        [
            "MMG callback failed: content type missing not supported "
            "(expected application/json or text/plain)"
        ],
    ),
]


@pytest.mark.parametrize(("name", "content_type", "messages"), BAD_INPUT)
def test_bad_input_is_refused_and_still_stored(service, name, content_type, messages):
    sent = notification(service)
    body = fixture_text("mmg", name)

    response = post(MMG, body, content_type)

    assert response.status_code == 400
    assert response.json() == {"result": "error", "message": messages}
    receipt = Receipt.objects.get()
    assert (receipt.body, receipt.state) == (body, ReceiptState.REJECTED)
    assert stored(sent).status == S.SENDING


def test_metrics(service, statsd):
    notification(service)

    post(MMG, fixture_text("mmg", "temporary_failure.json"))

    lines = statsd.received()
    assert "notify.callback.mmg.temporary-failure:1|c" in lines
    assert any(
        line.startswith("notify.callback.mmg.temporary-failure.elapsed-time:") for line in lines
    )


class TestMmgReceiptCases(ReceiptCases):
    endpoint = MMG
    provider = "mmg"
    display_name = "MMG"
    missing_status_message = "MMG callback failed: status missing"
    missing_id_message = "MMG callback failed: CID missing"

    def delivered(self, reference=REFERENCE):
        return mmg("delivered.json", CID=str(reference))

    def without_status(self):
        return fixture_text("mmg", "missing_status.json")

    def without_id(self):
        return fixture_text("mmg", "missing_cid.json")

    def with_bad_time(self):
        return fixture_text("mmg", "deliverytime_not_a_time.json")
