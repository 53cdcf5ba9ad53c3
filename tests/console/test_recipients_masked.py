"""Every console page that can show a recipient shows it masked, by the one rule the logs use
(notifyproject.masking): a callback event's payload `to`, its attempts, a send attempt's error,
receipts' raw bodies (form, JSON, SNS-wrapped JSON), the notification's timeline; while a number
under any other field (MMG's `reference`, a sequential number) is shown whole."""

import json

import pytest

from receipts.models import Receipt, ReceiptState
from sending.models import NotificationStatus, SendAttempt
from sending.status import notification_update_status
from tests.conftest import FIXTURES
from tests.stats.factories import notification_make
from tests.webhooks.conftest import BEARER_TOKEN, Answer, Receiver, text
from webhooks import delivery
from webhooks.models import CallbackEvent
from webhooks.services import service_callback_set

NUMBER = "447700900123"  # the recipient of every notification made here
MASKED = "4477******23"
MMG_REFERENCE = "12345678"  # in tests/fixtures/mmg_receipts/delivered.json


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def receiver(service, settings):
    settings.SERVICE_CALLBACK_ALLOW_INSECURE = True
    settings.SERVICE_CALLBACK_TIMEOUT_SECONDS = 0.5
    receiver = Receiver()
    service_callback_set(service=service, url=receiver.url, bearer_token=BEARER_TOKEN)
    yield receiver
    receiver.stop()


def test_callback_event_page_and_its_attempts_show_the_to_masked(admin_client, service, receiver):
    notification = text(service, client_reference="client-ref-7")
    notification_update_status(notification_id=notification.id, status=NotificationStatus.DELIVERED)
    event = CallbackEvent.objects.get(notification=notification)
    receiver.answer(Answer(503))
    delivery.callback_event_send(event_id=str(event.id))
    assert json.loads(receiver.received[0].body)["to"] == NUMBER  # the service gets it whole

    page = _page(admin_client, f"/admin/webhooks/callbackevent/{event.id}/change/")
    assert f"&quot;to&quot;: &quot;{MASKED}&quot;" in page
    assert "client-ref-7" in page
    assert "HTTP 503 Service Unavailable" in page  # its attempt, listed under it
    assert NUMBER not in page

    listed = _page(admin_client, "/admin/webhooks/callbackevent/")
    assert str(notification.id) in listed
    assert NUMBER not in listed

    # The notification's page: its callback attempts and the timeline.
    page = _page(admin_client, f"/admin/sending/notification/{notification.id}/change/")
    assert "status callback to the service: 503" in page
    assert NUMBER not in page


def test_send_attempt_page_masks_a_number_the_provider_echoed(admin_client, service):
    sms = notification_make(service=service)
    attempt = SendAttempt.objects.create(
        notification=sms,
        provider="mmg",
        started_at=sms.created_at,
        duration_ms=40,
        outcome="error",
        status_code=400,
        error=f"Invalid number {NUMBER}",
    )
    page = _page(admin_client, f"/admin/sending/sendattempt/{attempt.pk}/change/")
    assert f"Invalid number {MASKED}" in page
    assert NUMBER not in page
    timeline = _page(admin_client, f"/admin/sending/notification/{sms.id}/change/")
    assert f"error: Invalid number {MASKED}" in timeline
    assert NUMBER not in timeline


def _receipt(provider: str, fixture: str, *, reference: str, content_type: str) -> Receipt:
    return Receipt.objects.create(
        provider=provider,
        body=(FIXTURES / fixture).read_text(),
        content_type=content_type,
        state=ReceiptState.PROCESSED,
        reference=reference,
        outcome="now delivered",
    )


def test_mmg_receipt_shows_its_reference_whole_and_the_msisdn_masked(admin_client, service):
    sms = notification_make(service=service)
    receipt = _receipt(
        "mmg",
        "mmg_receipts/delivered.json",
        reference=str(sms.id),
        content_type="application/json",
    )
    receipt.body = receipt.body.replace("5a2c6b0e-8d3f-4f7a-9c1e-3b6d2e4f8a10", str(sms.id))
    receipt.save()
    for url in (
        f"/admin/callbacks/receipt/{receipt.pk}/change/",
        f"/admin/sending/notification/{sms.id}/change/",  # the receipt in the timeline
    ):
        page = _page(admin_client, url)
        assert f"&quot;reference&quot;: &quot;{MMG_REFERENCE}&quot;" in page, url
        assert f"&quot;MSISDN&quot;: &quot;{MASKED}&quot;" in page, url
        assert NUMBER not in page, url


def test_sns_wrapped_ses_receipt_masks_the_addresses_inside(admin_client, service):
    mail = json.loads((FIXTURES / "ses_receipts" / "mail.json").read_text())
    delivered = json.loads((FIXTURES / "ses_receipts" / "delivery.json").read_text())
    delivered["mail"] = mail
    envelope = json.loads((FIXTURES / "ses_receipts" / "sns_notification.json").read_text())
    envelope["Message"] = json.dumps(delivered)
    receipt = Receipt.objects.create(
        provider="ses",
        body=json.dumps(envelope, indent=2),
        content_type="text/plain",
        state=ReceiptState.PROCESSED,
        reference=mail["messageId"],
        outcome="unknown notification",
    )
    page = _page(admin_client, f"/admin/callbacks/receipt/{receipt.pk}/change/")
    assert "jane@example.com" not in page
    assert "j***@example.com" in page
    assert mail["messageId"] in page
