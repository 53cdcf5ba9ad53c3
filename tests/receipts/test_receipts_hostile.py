"""Hostile receipts (contract section 6, issue 10): whatever a provider, or someone pretending to
be one, posts, the answer is 200 or the contract's JSON 4xx, the body is stored when it could be
read, and a receipt that did not parse changes no notification."""

import json
import logging
from datetime import UTC, datetime
from functools import partial
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receipts.models import Complaint, Receipt, ReceiptState
from sending.models import Notification, NotificationStatus, NotificationType
from tests.receipts.conftest import (
    FIRETEXT,
    MMG,
    REFERENCE,
    SES,
    SES_MESSAGE_ID,
    fixture_text,
    post,
    ses_notification,
    sns_envelope,
)
from tests.stats.factories import notification_make, statistics_of
from webhooks.models import CallbackEvent
from webhooks.services import service_callback_set

S = NotificationStatus


def sms(service):
    """A text Firetext failed to take and MMG took: receipts from either apply."""
    return notification_make(service=service, notification_id=REFERENCE, called=("firetext", "mmg"))


def email(service):
    return notification_make(
        service=service,
        status=S.SENDING,
        notification_type=NotificationType.EMAIL,
        provider_reference=SES_MESSAGE_ID,
        called="ses",
    )


def mmg_body(**changes) -> str:
    return json.dumps({**json.loads(fixture_text("mmg", "delivered.json")), **changes})


def ses_body(name: str, **changes) -> str:
    return json.dumps(sns_envelope(ses_notification(name, **changes)))


def answered_in_the_contracts_shape(response) -> dict:
    assert response.status_code in (200, 400), response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    if response.status_code == 200:
        assert body == {"result": "success"}
    else:
        assert body["result"] == "error" and body["message"]
    return body


def the_receipt() -> Receipt:
    [receipt] = Receipt.objects.all()
    return receipt


# --- times out of range: the receipt applies, without the time -------------------------------

OUT_OF_RANGE_TIMES = [
    "2016-04-05 16:01:07+1600",  # an offset PostgreSQL can't store and no place has
    "2016-04-05 16:01:07-1500",
    "0001-01-01 00:00:00",  # year 1: UTC of it is before year 1
    "0001-01-01 00:00:00+0100",
    "9999-12-31 23:59:59-0100",  # after year 9999 in UTC
    "1970-01-01 00:00:00",  # long before any text we sent
    "2999-01-01 00:00:00",
]


@pytest.mark.parametrize("time", OUT_OF_RANGE_TIMES)
def test_an_mmg_receipt_with_a_time_out_of_range_applies_without_it(db, service, time):
    notification = sms(service)

    response = post(MMG, mmg_body(deliverytime=time))

    answered_in_the_contracts_shape(response)
    assert response.status_code == 200
    receipt = the_receipt()
    assert (receipt.state, receipt.reported_at) == (ReceiptState.PROCESSED, None)
    assert Notification.objects.get(id=notification.id).status == S.DELIVERED


@pytest.mark.parametrize("time", OUT_OF_RANGE_TIMES)
def test_a_firetext_receipt_with_a_time_out_of_range_applies_without_it(db, service, time):
    notification = sms(service)
    form = {"mobile": "447700900123", "status": "0", "time": time, "reference": str(REFERENCE)}

    response = post(FIRETEXT, urlencode(form))

    assert response.status_code == 200
    assert the_receipt().reported_at is None
    assert Notification.objects.get(id=notification.id).status == S.DELIVERED


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_ses_receipt_with_a_time_out_of_range_applies_without_it(db, service, timestamp):
    notification = email(service)
    ses = ses_notification("delivery.json")
    ses["delivery"]["timestamp"] = timestamp

    response = post(SES, json.dumps(sns_envelope(ses)))

    assert response.status_code == 200
    assert the_receipt().reported_at is None
    assert Notification.objects.get(id=notification.id).status == S.DELIVERED


def test_a_time_in_range_is_still_kept(db, service):
    sms(service)

    post(MMG, mmg_body(deliverytime="2016-04-05 16:01:07+0200"))

    assert the_receipt().reported_at == datetime(2016, 4, 5, 14, 1, 7, tzinfo=UTC)


# --- text that is not text: lone surrogates, NUL ---------------------------------------------


def test_lone_surrogates_in_an_mmg_receipt_are_stored_and_it_applies(db, service):
    notification = sms(service)
    # A JSON escape of half a UTF-16 pair decodes to a string no database can store.
    body = (
        mmg_body(status="2", substatus="1")
        .replace('"1"', '"1\\ud800"')
        .replace('"12345678"', '"\\udfff"')
    )

    response = post(MMG, body)

    answered_in_the_contracts_shape(response)
    receipt = the_receipt()
    assert receipt.body == body
    assert receipt.state == ReceiptState.PROCESSED
    changed = Notification.objects.get(id=notification.id)
    assert changed.status == S.PERMANENT_FAILURE
    assert "\ud800" not in changed.provider_status_code


@pytest.mark.parametrize("endpoint", ["mmg", "ses"])
def test_an_escaped_nul_is_stored_and_named_in_the_answer(db, service, endpoint):
    """`\u0000` decodes to NUL, which PostgreSQL text can't hold (hypothesis found it)."""
    notification = sms(service) if endpoint == "mmg" else email(service)
    if endpoint == "mmg":
        response = post(MMG, mmg_body(status="9").replace('"status": "9"', '"status": "9\\u0000"'))
    else:
        response = post(SES, json.dumps(sns_envelope(Type="Note\x00")))

    body = answered_in_the_contracts_shape(response)
    assert response.status_code == 400
    assert "\x00" not in " ".join(body["message"])
    assert the_receipt().outcome
    assert Notification.objects.get(id=notification.id).status in (
        S.SENDING,
        S.TECHNICAL_FAILURE,
    )


def test_a_lone_surrogate_as_the_mmg_status_is_answered_400_and_stored(db, service):
    notification = sms(service)

    response = post(MMG, mmg_body(status="3").replace('"status": "3"', '"status": "\\ud83d"'))

    body = answered_in_the_contracts_shape(response)
    assert response.status_code == 400
    assert "status" in " ".join(body["message"])
    assert the_receipt().body  # kept, whatever it holds
    assert Notification.objects.get(id=notification.id).status == S.TECHNICAL_FAILURE


def test_lone_surrogates_in_an_ses_receipt_are_stored_and_it_applies(db, service):
    notification = email(service)
    ses = ses_notification("bounce_permanent.json")
    ses["bounce"]["bounceSubType"] = "General\ud800"
    envelope = json.dumps(sns_envelope(ses))  # json.dumps escapes it: \ud800 in the body
    assert "\\ud800" in envelope

    response = post(SES, envelope)

    assert response.status_code == 200
    assert the_receipt().state == ReceiptState.PROCESSED
    assert Notification.objects.get(id=notification.id).status == S.PERMANENT_FAILURE


# --- SES objects of the wrong type -----------------------------------------------------------


@pytest.mark.parametrize(
    "name, field, expected",
    [
        ("delivery.json", "delivery", S.DELIVERED),
        ("bounce_permanent.json", "bounce", S.TEMPORARY_FAILURE),  # a bounce of no known type
        ("delivery.json", "delivery", S.DELIVERED),
    ],
)
@pytest.mark.parametrize("wrong", ["a string", 7, ["a", "list"], None, True])
def test_an_ses_detail_object_of_the_wrong_type_is_left_out(
    db, service, name, field, expected, wrong
):
    notification = email(service)

    response = post(SES, ses_body(name, **{field: wrong}))

    answered_in_the_contracts_shape(response)
    assert response.status_code == 200
    assert the_receipt().state == ReceiptState.PROCESSED
    assert Notification.objects.get(id=notification.id).status == expected


@pytest.mark.parametrize("wrong", ["a string", 7, ["a", "list"], True])
def test_an_ses_complaint_object_of_the_wrong_type_still_records_the_complaint(db, service, wrong):
    email(service)

    response = post(SES, ses_body("complaint.json", complaint=wrong))

    assert response.status_code == 200
    assert the_receipt().state == ReceiptState.PROCESSED


@pytest.mark.parametrize("wrong", [["Delivery"], {"a": 1}, 7])
def test_an_ses_notification_type_that_is_not_text_is_answered_400(db, service, wrong):
    notification = email(service)

    response = post(SES, ses_body("delivery.json", notificationType=wrong))

    answered_in_the_contracts_shape(response)
    assert response.status_code == 400
    assert Notification.objects.get(id=notification.id).status in (
        S.SENDING,
        S.TECHNICAL_FAILURE,
    )


# --- forms and nesting -----------------------------------------------------------------------


@pytest.mark.parametrize("status", ["%zz", "%", "%0", "%ff%fe", "%ED%A0%80", "0%"])
def test_a_firetext_form_with_a_broken_escape_is_refused_and_changes_nothing(db, service, status):
    """The issue's case: `status=%zz` was read as a status "%zz" and set technical-failure."""
    notification = sms(service)

    response = post(FIRETEXT, f"mobile=447700900123&status={status}&reference={REFERENCE}")

    body = answered_in_the_contracts_shape(response)
    assert body["message"] == ["Firetext callback failed: body is not form-encoded"]
    receipt = the_receipt()
    assert receipt.state == ReceiptState.REJECTED
    assert receipt.body.startswith("mobile=")
    assert Notification.objects.get(id=notification.id).status == S.SENDING


@pytest.mark.parametrize("status", ["%00", "%20"])
def test_a_firetext_status_that_decodes_to_no_known_status_is_a_technical_failure(
    db, service, status
):
    """A well-formed escape of an unknown status is a status not in the table (contract 6)."""
    notification = sms(service)

    response = post(FIRETEXT, f"mobile=447700900123&status=9{status}&reference={REFERENCE}")

    assert response.status_code == 400
    assert Notification.objects.get(id=notification.id).status == S.TECHNICAL_FAILURE


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
def test_deeply_nested_json_is_answered_400_and_stored(db, service, depth):
    notification = sms(service)
    nested = "[" * depth + "]" * depth

    for endpoint, body in [
        (MMG, nested),
        (MMG, mmg_body().replace('"12345678"', nested)),
        (SES, nested),
        (SES, json.dumps(sns_envelope(name="sns_notification.json", Message=nested))),
        (
            SES,
            json.dumps(sns_envelope(name="sns_notification.json", Message="{}")).replace(
                '"{}"', json.dumps('{"notificationType": "Delivery", "mail": ' + nested + "}")
            ),
        ),
    ]:
        response = post(endpoint, body)
        answered_in_the_contracts_shape(response)

    assert Receipt.objects.count() == 5
    assert Notification.objects.get(id=notification.id).status in (S.SENDING, S.DELIVERED)


# --- hypothesis: random and mutated receipts -------------------------------------------------

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "\ud800", "%zz", "null", "3", "-1", "1e999", "é" * 300]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=3000),
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


def assert_safe(response, notification, *, readable: bool = True):
    """The contract's answer; the body kept; a receipt that did not parse changed nothing."""
    answered_in_the_contracts_shape(response)
    receipt = Receipt.objects.order_by("-pk").first()
    if readable:
        assert receipt is not None
    if receipt is not None and receipt.state == ReceiptState.REJECTED:
        assert Notification.objects.get(id=notification.id).status == notification.status
    Receipt.objects.all().delete()
    Notification.objects.filter(id=notification.id).update(status=notification.status)


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(["mobile", "status", "time", "reference", "code", "extra"]) | hostile_text,
        hostile_text,
        max_size=7,
    ),
    repeat=st.booleans(),
    raw_tail=st.sampled_from(["", "&", "&&", "=", "&status", "%", "%zz=1", "&reference=%ff"]),
)
def test_any_firetext_form(db, service, fields, repeat, raw_tail):
    notification = Notification.objects.filter(id=REFERENCE).first() or sms(service)
    form = {"status": "0", "reference": str(REFERENCE), **fields}
    escaped = partial(quote, safe="", errors="surrogatepass")  # a surrogate as %ED%A0%80
    body = "&".join(f"{escaped(k)}={escaped(v)}" for k, v in form.items())
    body = (body + "&" + body if repeat else body) + raw_tail

    assert_safe(post(FIRETEXT, body.encode("utf-8", "surrogatepass")), notification)


@FUZZ
@given(
    changes=st.dictionaries(
        st.sampled_from(["status", "substatus", "CID", "deliverytime", "MSISDN", "reference"])
        | hostile_text,
        json_value,
        max_size=6,
    ),
    truncate=st.integers(0, 400),
    as_bytes=st.binary(max_size=50),
)
def test_any_mmg_json(db, service, changes, truncate, as_bytes):
    notification = Notification.objects.filter(id=REFERENCE).first() or sms(service)
    body = json.dumps({"CID": str(REFERENCE), "status": "3", **changes})
    if truncate:
        body = body[: len(body) - truncate % max(len(body), 1)]

    assert_safe(post(MMG, body), notification)
    assert_safe(post(MMG, body.encode() + as_bytes), notification)


@FUZZ
@given(
    envelope_changes=st.dictionaries(
        st.sampled_from(["Type", "TopicArn", "Message", "MessageId", "SubscribeURL"]),
        json_value,
        max_size=3,
    ),
    ses_changes=st.dictionaries(
        st.sampled_from(["notificationType", "mail", "delivery", "bounce", "complaint"]),
        json_value,
        max_size=3,
    ),
    name=st.sampled_from(["delivery.json", "bounce_permanent.json", "complaint.json"]),
)
def test_any_sns_envelope(db, service, envelope_changes, ses_changes, name):
    notification = Notification.objects.filter(provider_reference=SES_MESSAGE_ID).first() or email(
        service
    )
    ses = ses_notification(name, **ses_changes)
    envelope = sns_envelope(ses, **envelope_changes)
    if "SubscribeURL" in envelope_changes:
        envelope["Type"] = "SubscriptionConfirmation"  # an SNS URL we'd fetch is never made here

    assert_safe(post(SES, json.dumps(envelope)), notification)


# --- a receipt for what its provider was never called for (issue 20) --------------------------
# Whoever holds a provider's receipt credentials (the shared CALLBACK_BASIC_AUTH is in the receipt
# URLs given to both SMS providers) can name any notification. Each of these is stored, answered
# 200, logged and listed as ignored, and changes nothing: no status, no count, no callback.

MMG_REFERENCE = "12345678"  # MMG's references are sequential numbers


def firetext_delivered(notification) -> str:
    return urlencode({"mobile": "447700900123", "status": "0", "reference": str(notification.id)})


def mmg_delivered(notification) -> str:
    return mmg_body(CID=str(notification.id))


def ses_permanent_bounce(notification) -> str:
    mail = {**json.loads(fixture_text("ses", "mail.json")), "messageId": MMG_REFERENCE}
    return ses_body("bounce_permanent.json", mail=mail)


def made(service, kind, called, status=S.SENDING):
    return notification_make(
        service=service,
        status=status,
        notification_type=kind,
        provider_reference=MMG_REFERENCE,
        called=called,
    )


SMS, EMAIL = NotificationType.SMS, NotificationType.EMAIL
# provider, endpoint, body, the notification it names (type, providers called, status), why.
FOREIGN_RECEIPTS = [
    pytest.param(
        "firetext", FIRETEXT, firetext_delivered, (EMAIL, "ses", S.SENDING),
        "firetext receipt for an email", id="firetext-an-email",
    ),
    pytest.param(
        "firetext", FIRETEXT, firetext_delivered, (SMS, "mmg", S.SENDING),
        "firetext receipt for a text sent by mmg", id="firetext-a-text-mmg-sent",
    ),
    pytest.param(
        "firetext", FIRETEXT, firetext_delivered, (SMS, (), S.CREATED),
        "firetext receipt for a text never sent", id="firetext-a-text-never-sent",
    ),
    pytest.param(
        "mmg", MMG, mmg_delivered, (EMAIL, "ses", S.SENDING),
        "mmg receipt for an email", id="mmg-an-email",
    ),
    pytest.param(
        "mmg", MMG, mmg_delivered, (SMS, "firetext", S.SENDING),
        "mmg receipt for a text sent by firetext", id="mmg-a-text-firetext-sent",
    ),
    pytest.param(
        "mmg", MMG, mmg_delivered, (SMS, (), S.CREATED),
        "mmg receipt for a text never sent", id="mmg-a-text-never-sent",
    ),
    pytest.param(
        "ses", SES, ses_permanent_bounce, (SMS, "mmg", S.SENDING),
        "ses receipt for a text", id="ses-a-text-mmg-sent",
    ),
    pytest.param(
        "ses", SES, ses_permanent_bounce, (SMS, "firetext", S.SENDING),
        "ses receipt for a text", id="ses-a-text-firetext-sent",
    ),
    pytest.param(
        "ses", SES, ses_permanent_bounce, (EMAIL, (), S.CREATED),
        "ses receipt for an email never sent", id="ses-an-email-never-sent",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "endpoint", "body", "named", "why"), FOREIGN_RECEIPTS)
def test_a_receipt_for_what_its_provider_was_never_called_for_changes_nothing(
    db, service, settings, caplog, provider, endpoint, body, named, why
):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = True
    service_callback_set(service=service, url="http://127.0.0.1:9/cb", bearer_token="x" * 12)
    kind, called, status = named
    victim = made(service, kind, called, status)
    counts_before = statistics_of(service)

    response = post(endpoint, body(victim))

    assert (response.status_code, response.json()) == (200, {"result": "success"})
    assert Notification.objects.get(id=victim.id).status == status
    assert statistics_of(service) == counts_before
    assert not CallbackEvent.objects.exists()
    receipt = the_receipt()
    assert (receipt.provider, receipt.state, receipt.outcome) == (
        provider,
        ReceiptState.IGNORED,
        f"ignored: {why}",
    )
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage().startswith("receipt ignored")
    assert (warning.provider, warning.reason) == (provider, why)


def test_a_complaint_for_a_text_is_ignored_and_sends_no_callback(db, service, settings):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = True
    service_callback_set(service=service, url="http://127.0.0.1:9/cb", bearer_token="x" * 12)
    made(service, SMS, "mmg")
    mail = {**json.loads(fixture_text("ses", "mail.json")), "messageId": MMG_REFERENCE}

    response = post(SES, ses_body("complaint.json", mail=mail))

    assert response.status_code == 200
    assert not Complaint.objects.exists() and not CallbackEvent.objects.exists()
    assert (the_receipt().state, the_receipt().outcome) == (
        ReceiptState.IGNORED,
        "ignored: ses receipt for a text",
    )


def test_ignored_receipts_are_listed_as_ignored_in_the_console(admin_client, service):
    victim = made(service, SMS, "mmg")
    post(FIRETEXT, firetext_delivered(victim))

    listing = admin_client.get("/admin/callbacks/receipt/", {"outcome": "ignored"})

    assert listing.status_code == 200
    page = listing.content.decode()
    assert "ignored: firetext receipt for a text sent by mmg" in page
