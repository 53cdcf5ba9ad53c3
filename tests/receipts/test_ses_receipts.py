"""SES receipts through SNS (contract section 6): AWS's documented message shapes, signed with a
locally made key whose certificate stands in for the one at SigningCertURL."""

import json
import logging
import socket
import threading

import pytest
import requests
import responses
from responses import matchers

from receipts.inbox import receipts_drain
from receipts.models import Complaint, Receipt, ReceiptState
from receipts.parsers import ReceiptInvalid, sns
from receipts.parsers.ses import SesReceiptParser
from sending.models import Notification, NotificationStatus, NotificationType
from tests.receipts.conftest import (
    CERT_URL,
    SES,
    SES_MESSAGE_ID,
    fixture_text,
    post,
    ses_notification,
    sns_envelope,
)
from tests.receipts.receipt_cases import ReceiptCases
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus
SUCCESS = {"result": "success"}
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-receipts"


def email(service, status=S.SENDING, message_id=SES_MESSAGE_ID):
    return notification_make(
        service=service,
        status=status,
        notification_type=NotificationType.EMAIL,
        provider_reference=message_id,
        called="ses",
    )


def stored(notification) -> Notification:
    return Notification.objects.get(id=notification.id)


def post_sns(message: dict, content_type=None):
    return post(SES, json.dumps(message), content_type)


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    ("name", "expected", "reason"),
    [
        ("delivery.json", S.DELIVERED, "250 ok:  Message 64111812 accepted"),
        ("bounce_permanent.json", S.PERMANENT_FAILURE, "Permanent/General: hard bounce"),
        ("bounce_transient.json", S.TEMPORARY_FAILURE, "Transient/MailboxFull: mailbox full"),
        (
            "bounce_undetermined.json",
            S.TEMPORARY_FAILURE,
            "Undetermined/Undetermined: SES could not determine the reason",
        ),
    ],
)
def test_signed_notifications_set_the_status(service, sns_signer, version, name, expected, reason):
    sent = email(service)
    message = sns_signer.sign(sns_envelope(ses_notification(name)), version)

    response = post_sns(message)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    after = stored(sent)
    assert (after.status, after.provider_status_reason) == (expected, reason)
    column = "emails_delivered" if expected == S.DELIVERED else "emails_failed"
    assert statistics_of(service)[column] == 1
    receipt = Receipt.objects.get()
    assert (receipt.provider, receipt.state, receipt.reference) == (
        "ses",
        "processed",
        SES_MESSAGE_ID,
    )
    assert sns_signer.fetched == [CERT_URL]


def test_the_certificate_is_fetched_once(service, sns_signer):
    email(service)
    for name in ("delivery.json", "delivery.json", "bounce_permanent.json"):
        assert post_sns(sns_signer.sign(sns_envelope(ses_notification(name)))).status_code == 200

    assert sns_signer.fetched == [CERT_URL]


def test_a_complaint_is_recorded_and_the_status_stays(service, sns_signer):
    sent = email(service, status=S.DELIVERED)
    before = statistics_of(service)
    message = sns_signer.sign(sns_envelope(ses_notification("complaint.json")))

    assert post_sns(message).json() == SUCCESS
    assert post_sns(message).json() == SUCCESS  # SNS delivers at least once

    assert stored(sent).status == S.DELIVERED
    complaint = Complaint.objects.get()
    assert (complaint.notification_id, complaint.complaint_type) == (sent.id, "abuse")
    assert complaint.feedback_id == "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
    assert statistics_of(service) == before


def test_bounce_then_delivery_stays_a_permanent_failure(service, sns_signer):
    sent = email(service)
    for name in ("bounce_permanent.json", "delivery.json", "delivery.json"):
        assert post_sns(sns_signer.sign(sns_envelope(ses_notification(name)))).json() == SUCCESS

    assert stored(sent).status == S.PERMANENT_FAILURE
    stats = statistics_of(service)
    assert (stats["emails_failed"], stats["emails_delivered"]) == (1, 0)


def test_a_receipt_before_sending(service, sns_signer):
    created = email(service, status=S.CREATED)

    post_sns(sns_signer.sign(sns_envelope(ses_notification("delivery.json"))))

    assert stored(created).status == S.DELIVERED


def test_a_message_id_we_do_not_have(service, sns_signer, caplog):
    response = post_sns(sns_signer.sign(sns_envelope(ses_notification("delivery.json"))))

    assert (response.status_code, response.json()) == (200, SUCCESS)
    assert Receipt.objects.get().outcome == "unknown notification"
    assert "receipt for unknown notification" in caplog.messages


def test_an_unknown_notification_type_is_a_technical_failure(service, sns_signer, caplog):
    sent = email(service)

    response = post_sns(
        sns_signer.sign(sns_envelope(ses_notification("unknown_notification_type.json")))
    )

    assert response.status_code == 400
    assert response.json() == {
        "result": "error",
        "message": ["SES callback failed: notificationType Received not found"],
    }
    assert stored(sent).status == S.TECHNICAL_FAILURE
    assert "ses receipt with unknown notificationType" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    ]


def test_unsigned_messages_are_accepted_when_verification_is_off(service, settings):
    settings.SNS_VERIFY_SIGNATURES = False
    sent = email(service)

    assert post_sns(sns_envelope(ses_notification("delivery.json"))).json() == SUCCESS
    assert stored(sent).status == S.DELIVERED


@responses.activate
@pytest.mark.parametrize("allowed", [[], [TOPIC], ["arn:aws:sns:eu-west-1:1:other", TOPIC]])
def test_a_subscription_is_confirmed_for_an_allowed_topic(db, sns_signer, settings, allowed):
    settings.SES_SNS_TOPIC_ARNS = allowed
    message = sns_signer.sign(sns_envelope(name="sns_subscription_confirmation.json"))
    visit = responses.get(
        message["SubscribeURL"],
        body="<ConfirmSubscriptionResponse/>",
        match=[matchers.request_kwargs_matcher({"timeout": settings.PROVIDER_TIMEOUT_SECONDS})],
    )

    response = post_sns(message)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    assert visit.call_count == 1
    assert Receipt.objects.get().outcome == "subscription confirmed"


@responses.activate
def test_a_subscription_to_another_topic_is_refused_unvisited(db, sns_signer, settings):
    settings.SES_SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-1:123456789012:something-else"]
    message = sns_signer.sign(sns_envelope(name="sns_subscription_confirmation.json"))

    response = post_sns(message)

    assert response.status_code == 400
    assert response.json()["message"] == [f"SES callback failed: topic {TOPIC} not allowed"]
    assert len(responses.calls) == 0
    assert Receipt.objects.get().state == ReceiptState.REJECTED


@responses.activate
def test_a_failed_confirmation_is_kept_and_replayed(db, sns_signer):
    message = sns_signer.sign(sns_envelope(name="sns_subscription_confirmation.json"))
    responses.get(message["SubscribeURL"], status=503)

    response = post_sns(message)

    assert (response.status_code, response.json()) == (200, SUCCESS)
    receipt = Receipt.objects.get()
    assert receipt.state == ReceiptState.FAILED

    responses.replace(responses.GET, message["SubscribeURL"], body="ok")
    receipts_drain(receipts=Receipt.objects.filter(pk=receipt.pk))  # a replay
    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts) == (ReceiptState.PROCESSED, 2)


def test_an_unsubscribe_confirmation_needs_nothing(db, sns_signer):
    message = sns_signer.sign(sns_envelope(name="sns_unsubscribe_confirmation.json"))

    assert post_sns(message).json() == SUCCESS
    assert Receipt.objects.get().state == ReceiptState.PROCESSED


def test_an_unreachable_certificate_leaves_the_receipt_failed(service, sns_signer, monkeypatch):
    def unreachable(url):
        raise requests.ConnectionError("no route")

    monkeypatch.setattr(sns, "sns_certificate_fetch", unreachable)
    sent = email(service)

    response = post_sns(sns_signer.sign(sns_envelope(ses_notification("delivery.json"))))

    assert (response.status_code, response.json()) == (200, SUCCESS)
    assert Receipt.objects.get().state == ReceiptState.FAILED
    assert stored(sent).status == S.SENDING


def signed(sns_signer, **changes) -> dict:
    return {**sns_signer.sign(sns_envelope(ses_notification("delivery.json"))), **changes}


def _bad_inputs():
    """(name, make the body from a signer, content type, messages)"""
    invalid_signature = ["SES callback failed: invalid signature"]
    return [
        (
            "not json",
            lambda s: fixture_text("ses", "truncated_json.txt"),
            None,
            ["SES callback failed: invalid json"],
        ),
        ("json array", lambda s: "[]", None, ["SES callback failed: invalid json"]),
        (
            "unknown Type",
            lambda s: json.dumps(signed(s, Type="Announcement")),
            None,
            ["SES callback failed: Type Announcement not supported"],
        ),
        (
            "no Type",
            lambda s: json.dumps({k: v for k, v in signed(s).items() if k != "Type"}),
            None,
            ["SES callback failed: Type missing"],
        ),
        (
            "tampered Message",
            lambda s: json.dumps(
                signed(s, Message=json.dumps(ses_notification("bounce_permanent.json")))
            ),
            None,
            invalid_signature,
        ),
        ("no Signature", lambda s: json.dumps(signed(s, Signature="")), None, invalid_signature),
        (
            "Signature not base64",
            lambda s: json.dumps(signed(s, Signature="%%%")),
            None,
            invalid_signature,
        ),
        (
            "SignatureVersion 3",
            lambda s: json.dumps(signed(s, SignatureVersion="3")),
            None,
            invalid_signature,
        ),
        *[
            (
                f"certificate at {url}",
                lambda s, url=url: json.dumps(signed(s, SigningCertURL=url)),
                None,
                invalid_signature,
            )
            for url in [
                "http://sns.eu-west-1.amazonaws.com/cert.pem",
                "https://sns.eu-west-1.amazonaws.com.example.com/cert.pem",
                "https://example.com/sns.eu-west-1.amazonaws.com/cert.pem",
                "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
                "https://sns.eu-west-1.amazonaws.com/cert.txt",
            ]
        ],
        (
            "Message not JSON",
            lambda s: json.dumps(s.sign(sns_envelope(Message="Hello world!"))),
            None,
            ["SES callback failed: invalid json in Message"],
        ),
        (
            "no mail.messageId",
            lambda s: json.dumps(s.sign(sns_envelope(ses_notification("delivery.json", mail={})))),
            None,
            ["SES callback failed: mail.messageId missing"],
        ),
        (
            "no notificationType",
            lambda s: json.dumps(
                s.sign(sns_envelope(ses_notification("delivery.json", notificationType=None)))
            ),
            None,
            ["SES callback failed: notificationType missing"],
        ),
        (
            "form content type",
            lambda s: json.dumps(signed(s)),
            "application/x-www-form-urlencoded",
            [
                "SES callback failed: content type application/x-www-form-urlencoded not supported "
                "(expected text/plain or application/json)"
            ],
        ),
    ]


@pytest.mark.parametrize(
    ("make", "content_type", "messages"),
    [b[1:] for b in _bad_inputs()],
    ids=[b[0] for b in _bad_inputs()],
)
def test_bad_input_is_refused_and_still_stored(service, sns_signer, make, content_type, messages):
    sent = email(service)
    body = make(sns_signer)

    response = post(SES, body, content_type)

    assert response.status_code == 400
    assert response.json() == {"result": "error", "message": messages}
    receipt = Receipt.objects.get()
    assert (receipt.body, receipt.state) == (body, ReceiptState.REJECTED)
    assert stored(sent).status == S.SENDING


def test_a_topic_not_allowed_is_refused(service, sns_signer, settings):
    settings.SES_SNS_TOPIC_ARNS = ["arn:aws:sns:eu-west-1:123456789012:other"]
    sent = email(service)

    response = post_sns(sns_signer.sign(sns_envelope(ses_notification("delivery.json"))))

    assert response.status_code == 400
    assert response.json()["message"] == [f"SES callback failed: topic {TOPIC} not allowed"]
    assert stored(sent).status == S.SENDING


def test_metrics(service, sns_signer, statsd):
    email(service)

    post_sns(sns_signer.sign(sns_envelope(ses_notification("delivery.json"))))
    post_sns(sns_signer.sign(sns_envelope(ses_notification("complaint.json"))))

    lines = statsd.received()
    assert "notify.callback.ses.delivered:1|c" in lines
    assert "notify.callback.ses.complaint:1|c" in lines
    assert any(line.startswith("notify.callback.ses.delivered.elapsed-time:") for line in lines)


def test_a_certificate_server_that_never_answers_is_given_up_on_in_time(settings):
    """A real socket that takes the connection and never answers: the fetch ends with a timeout
    (the receipt is then kept as failed and replayed), it never holds the request for ever."""
    settings.PROVIDER_TIMEOUT_SECONDS = 0.3
    outcome: list[BaseException] = []
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/SimpleNotificationService.pem"

        def fetch():
            try:
                sns.sns_certificate_fetch(url)
            except BaseException as err:  # noqa: BLE001 - the test reads whatever it was
                outcome.append(err)

        fetching = threading.Thread(target=fetch, daemon=True)
        fetching.start()
        fetching.join(timeout=30)

    assert not fetching.is_alive(), "the fetch had no timeout"
    assert [type(err) for err in outcome] == [requests.ReadTimeout]


class TestSesReceiptCases(ReceiptCases):
    endpoint = SES
    provider = "ses"
    display_name = "SES"
    notification_type = NotificationType.EMAIL
    missing_status_message = "SES callback failed: notificationType missing"
    missing_id_message = "SES callback failed: mail.messageId missing"

    def ses(self, **changes) -> str:
        return json.dumps(sns_envelope(ses_notification("delivery.json", **changes)))

    def delivered(self, reference=None):
        return self.ses()

    def without_status(self):
        notification = ses_notification("delivery.json")
        del notification["notificationType"]
        return json.dumps(sns_envelope(notification))

    def without_id(self):
        notification = ses_notification("delivery.json")
        del notification["mail"]["messageId"]
        return json.dumps(sns_envelope(notification))

    def with_bad_time(self):
        delivery = ses_notification("delivery.json")["delivery"]
        return self.ses(delivery={**delivery, "timestamp": "yesterday afternoon"})


def test_the_ses_parser_reads_no_settings_it_is_handed_its_verifier_and_topics(settings):
    """Pure: what decides is what it was given, whatever the settings say."""
    settings.SNS_VERIFY_SIGNATURES = False
    settings.SES_SNS_TOPIC_ARNS = []
    checked = []

    def refuse(message):
        checked.append(message["MessageId"])
        raise sns.SnsSignatureInvalid("no")

    body = json.dumps(sns_envelope(ses_notification("delivery.json")))
    strict = SesReceiptParser(topic_arns=("arn:aws:sns:eu-west-1:123456789012:other",))
    with pytest.raises(ReceiptInvalid) as refused:
        strict.parse(body=body, content_type="text/plain")
    assert refused.value.messages[0].endswith("not allowed")

    with pytest.raises(ReceiptInvalid) as unsigned:
        SesReceiptParser(verify=refuse).parse(body=body, content_type="text/plain")
    assert unsigned.value.messages == ["SES callback failed: invalid signature"]
    assert len(checked) == 1

    event = SesReceiptParser().parse(body=body, content_type="text/plain")
    assert (event.status, event.provider_reference) == (S.DELIVERED, SES_MESSAGE_ID)
