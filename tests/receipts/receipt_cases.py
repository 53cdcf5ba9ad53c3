"""Receipt cases written once and run for every provider (django-anymail's webhook_cases idea).

A provider's test module subclasses `ReceiptCases` as `Test…ReceiptCases` and says how its
receipts look: the endpoint, and bodies for a delivery, a receipt without a status, one without
our id, and one whose optional time does not parse.
"""

import base64
import logging
import uuid

from django.test import Client

from receipts.models import Receipt, ReceiptState
from sending.attempts import attempt_outcome, attempts_finish
from sending.models import Notification, NotificationStatus, NotificationType, SendAttempt
from sending.status import notification_mark_sent
from tests.receipts.conftest import REFERENCE, SES_MESSAGE_ID, post
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus
SUCCESS = {"result": "success"}


class ReceiptCases:
    endpoint: tuple[str, str]
    provider: str  # the provider whose receipts these are, and who the notification was sent by
    display_name: str
    notification_type: str = NotificationType.SMS
    # The messages a receipt without a status / without our id is answered with.
    missing_status_message: str
    missing_id_message: str

    def delivered(self, reference: uuid.UUID = REFERENCE) -> str:
        raise NotImplementedError

    def without_status(self) -> str:
        raise NotImplementedError

    def without_id(self) -> str:
        raise NotImplementedError

    def with_bad_time(self) -> str:
        raise NotImplementedError

    # --- helpers

    def notification(self, service, status=S.SENDING, notification_id=REFERENCE, called=None):
        return notification_make(
            service=service,
            status=status,
            notification_type=self.notification_type,
            notification_id=notification_id,
            provider_reference=SES_MESSAGE_ID if notification_id == REFERENCE else None,
            called=self.provider if called is None else called,
        )

    def attempts(self) -> list[tuple[str, str]]:
        return list(SendAttempt.objects.order_by("id").values_list("provider", "outcome"))

    def post(self, body: str, content_type: str | None = None, **extra):
        return post(self.endpoint, body, content_type, **extra)

    def status_of(self, notification) -> str:
        return Notification.objects.get(id=notification.id).status

    @property
    def counted(self) -> str:
        return "sms" if self.notification_type == NotificationType.SMS else "emails"

    # --- the cases

    def test_a_delivery_is_stored_applied_and_counted(self, service):
        sent = self.notification(service)

        response = self.post(self.delivered())

        assert (response.status_code, response.json()) == (200, SUCCESS)
        assert self.status_of(sent) == S.DELIVERED
        receipt = Receipt.objects.get()
        assert (receipt.state, receipt.outcome) == (ReceiptState.PROCESSED, "now delivered")
        assert statistics_of(service)[f"{self.counted}_delivered"] == 1

    def test_a_duplicate_changes_and_counts_nothing_more(self, service):
        self.notification(service)
        self.post(self.delivered())

        response = self.post(self.delivered())

        assert (response.status_code, response.json()) == (200, SUCCESS)
        outcomes = list(Receipt.objects.order_by("id").values_list("outcome", flat=True))
        assert outcomes == ["now delivered", "unchanged: already delivered"]
        assert statistics_of(service)[f"{self.counted}_delivered"] == 1

    def test_a_final_status_never_moves(self, service):
        failed = self.notification(service, status=S.PERMANENT_FAILURE)

        assert self.post(self.delivered()).status_code == 200

        assert self.status_of(failed) == S.PERMANENT_FAILURE
        assert statistics_of(service)[f"{self.counted}_delivered"] == 0

    def test_a_notification_we_do_not_have_is_answered_200_stored_and_logged(self, db, caplog):
        response = self.post(self.delivered())

        assert (response.status_code, response.json()) == (200, SUCCESS)
        assert Receipt.objects.get().outcome == "unknown notification"
        assert "receipt for unknown notification" in caplog.messages

    def test_a_receipt_that_beats_the_hand_over_applies_and_settles_the_call(self, service):
        """The attempt is on record before the call, so the provider's receipt can come before
        the worker records the hand-over; if the worker was killed mid-call, the receipt is all
        that will ever say the call happened: the attempt stops looking in flight."""
        in_flight = self.notification(service, status=S.CREATED)
        assert self.attempts() == [(self.provider, SendAttempt.Outcome.STARTED)]

        response = self.post(self.delivered())

        assert (response.status_code, response.json()) == (200, SUCCESS)
        assert self.status_of(in_flight) == S.DELIVERED
        assert statistics_of(service)[f"{self.counted}_delivered"] == 1
        assert self.attempts() == [(self.provider, SendAttempt.Outcome.RECEIPTED)]

    def test_a_live_worker_records_its_own_outcome_over_the_receipts(self, service):
        in_flight = self.notification(service, status=S.CREATED)
        self.post(self.delivered())

        attempt = SendAttempt.objects.get()
        attempts_finish({attempt.id: attempt_outcome(None, 120)})
        notification_mark_sent(
            notification_id=in_flight.id, provider=self.provider, reference=SES_MESSAGE_ID
        )

        assert self.attempts() == [(self.provider, SendAttempt.Outcome.SUCCESS)]
        after = Notification.objects.get(id=in_flight.id)
        assert (after.status, after.sent_by) == (S.DELIVERED, self.provider)

    def test_a_receipt_for_a_notification_never_sent_is_ignored(self, service, caplog):
        unsent = self.notification(service, status=S.CREATED, called=())

        response = self.post(self.delivered())

        assert (response.status_code, response.json()) == (200, SUCCESS)
        assert self.status_of(unsent) == S.CREATED
        assert statistics_of(service)[f"{self.counted}_delivered"] == 0
        receipt = Receipt.objects.get()
        assert receipt.state == ReceiptState.IGNORED
        assert receipt.outcome.startswith(f"ignored: {self.provider} receipt for ")
        assert any(r.getMessage().startswith("receipt ignored") for r in caplog.records)

    def test_without_a_status_it_is_refused_and_stored(self, service):
        sent = self.notification(service)
        body = self.without_status()

        response = self.post(body)

        assert response.status_code == 400
        assert response.json() == {"result": "error", "message": [self.missing_status_message]}
        assert Receipt.objects.get().state == ReceiptState.REJECTED
        assert self.status_of(sent) == S.SENDING

    def test_without_our_id_it_is_refused_and_stored(self, service):
        sent = self.notification(service)

        response = self.post(self.without_id())

        assert response.status_code == 400
        assert response.json() == {"result": "error", "message": [self.missing_id_message]}
        assert Receipt.objects.get().state == ReceiptState.REJECTED
        assert self.status_of(sent) == S.SENDING

    def test_a_time_that_does_not_parse_is_logged_and_the_receipt_applied(self, service, caplog):
        """Contract section 6: a bad optional field never costs the status."""
        sent = self.notification(service)

        response = self.post(self.with_bad_time())

        assert (response.status_code, response.json()) == (200, SUCCESS)
        assert self.status_of(sent) == S.DELIVERED
        receipt = Receipt.objects.get()
        assert (receipt.state, receipt.reported_at) == (ReceiptState.PROCESSED, None)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert any("bad" in r.getMessage() and "applied without it" in r.getMessage()
                   for r in warnings)  # fmt: skip

    def test_another_content_type_is_refused(self, service):
        response = self.post(self.delivered(), "image/png")

        assert response.status_code == 400
        (message,) = response.json()["message"]
        assert message.startswith(
            f"{self.display_name} callback failed: content type image/png not supported"
        )

    def test_a_body_over_1_mb_is_refused_unread(self, db, settings):
        response = self.post("x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1))

        assert response.status_code == 413
        assert response.json()["message"] == [
            f"{self.display_name} callback failed: body over "
            f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes"
        ]
        assert not Receipt.objects.exists()

    def test_with_basic_auth_set_a_stranger_is_refused_before_anything_is_stored(
        self, service, settings
    ):
        settings.CALLBACK_BASIC_AUTH = [("notify", "secret")]
        sent = self.notification(service)
        wrong = "Basic " + base64.b64encode(b"notify:guess").decode()

        response = self.post(self.delivered(), HTTP_AUTHORIZATION=wrong)

        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Basic realm="notify receipts"'
        assert not Receipt.objects.exists() and self.status_of(sent) == S.SENDING
        right = "Basic " + base64.b64encode(b"notify:secret").decode()
        assert self.post(self.delivered(), HTTP_AUTHORIZATION=right).status_code == 200

    def test_a_get_is_405_in_the_api_error_format(self, db):
        response = Client().get(self.endpoint[0])

        assert response.status_code == 405
        assert response.json()["errors"][0]["error"] == "MethodNotAllowed"
