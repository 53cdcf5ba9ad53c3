"""PostgreSQL: the single-statement receipt path (`status_change_ctes`) against the ordinary one
(`notification_update_status`), for every receipt fixture and every status a notification can
be in, sent by the receipt's provider or not (`receipt_applies`): the same answer, the same
stored receipt, the same notification, the same send attempts, the same statistics."""

import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from callbacks import services as receipt_services
from callbacks.models import Receipt
from sending.models import Notification, NotificationStatus, SendAttempt
from stats.models import STATISTICS_FIELDS, DailyStatistics
from tests.callbacks.conftest import (
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
from tests.conftest import FIXTURES
from tests.stats.factories import notification_make

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the single statement is PostgreSQL's"
)

S = NotificationStatus
STARTS = [None, S.CREATED, S.SENDING, S.PENDING, S.DELIVERED, S.PERMANENT_FAILURE]
# Who a receipt's notification was sent by, per endpoint: (providers called, its type).
OWN = {FIRETEXT: (("firetext",), "sms"), MMG: (("mmg",), "sms"), SES: (("ses",), "email")}
SENT = {
    "own": OWN,
    "after failover": {FIRETEXT: (("firetext", "mmg"), "sms"), MMG: (("mmg", "firetext"), "sms"),
                       SES: (("ses",), "email")},
    "by another provider": {FIRETEXT: (("mmg",), "sms"), MMG: (("firetext",), "sms"),
                            SES: (("mmg",), "sms")},
    "never": {FIRETEXT: ((), "sms"), MMG: ((), "sms"), SES: ((), "email")},
    "on another channel": {FIRETEXT: (("ses",), "email"), MMG: (("ses",), "email"),
                           SES: (("firetext",), "sms")},
}  # fmt: skip
CASES = [(start, "own") for start in STARTS] + [
    (start, sent) for sent in list(SENT)[1:] for start in (S.CREATED, S.SENDING)
]


def _receipts():
    for path in sorted((FIXTURES / "firetext_receipts").iterdir()):
        yield pytest.param(FIRETEXT, path.read_bytes(), id=f"firetext-{path.name}")
    for path in sorted((FIXTURES / "mmg_receipts").iterdir()):
        yield pytest.param(MMG, path.read_bytes(), id=f"mmg-{path.name}")
    for path in sorted((FIXTURES / "ses_receipts").iterdir()):
        if path.name in ("mail.json", "sns_notification.json", "truncated_json.txt"):
            continue
        if path.name.startswith("sns_"):  # the envelopes of other message types
            body = fixture_text("ses", path.name)
            if "SubscribeURL" in body and "Unsubscribe" not in body:
                continue  # a subscription confirmation visits a URL: not a status receipt
        else:
            body = json.dumps(sns_envelope(ses_notification(path.name)))
        yield pytest.param(SES, body.encode(), id=f"ses-{path.name}")
    yield pytest.param(SES, fixture_text("ses", "truncated_json.txt").encode(), id="ses-t")


def _outcome(service, endpoint, body, start, sent, sent_at):
    """Post the receipt to a notification in `start` (None: no notification), sent as `sent`
    says, and read what a user would see; everything is rolled back after."""
    called, kind = SENT[sent][endpoint]
    with transaction.atomic():
        if start is not None:
            notification_make(
                service=service,
                notification_type=kind,
                status=start,
                notification_id=REFERENCE,
                provider_reference=SES_MESSAGE_ID,
                sent_at=None if start == S.CREATED else sent_at,
                called=called,
            )
        response = post(endpoint, body)
        seen = {
            "answer": (response.status_code, response.json()),
            "receipts": list(
                Receipt.objects.values(
                    "provider",
                    "body",
                    "content_type",
                    "state",
                    "outcome",
                    "reference",
                    "reported_at",
                    "attempts",
                )
            ),  # fmt: skip
            "notification": list(
                Notification.objects.filter(id=REFERENCE).values(
                    "status", "provider_status_code", "provider_status_reason", "sent_at"
                )
            ),
            "attempts": list(SendAttempt.objects.order_by("id").values_list("provider", "outcome")),
            "statistics": list(
                DailyStatistics.objects.values("service_id", "day", *STATISTICS_FIELDS)
            ),
        }
        transaction.set_rollback(True)
    return seen


@pytest.mark.parametrize(("start", "sent"), CASES, ids=lambda s: s or "none")
@pytest.mark.parametrize(("endpoint", "body"), list(_receipts()))
def test_both_paths_end_alike(service, monkeypatch, endpoint, body, start, sent):
    sent_at = timezone.now() - timedelta(minutes=1)
    monkeypatch.setattr(receipt_services, "SINGLE_STATEMENT_ON_POSTGRESQL", True)
    single = _outcome(service, endpoint, body, start, sent, sent_at)
    monkeypatch.setattr(receipt_services, "SINGLE_STATEMENT_ON_POSTGRESQL", False)
    ordinary = _outcome(service, endpoint, body, start, sent, sent_at)

    assert single == ordinary
    assert single["receipts"], "every receipt is stored"


def test_the_single_statement_is_really_taken(service, monkeypatch):
    """The comparison above means something only if the two paths differ in what they run."""
    notification_make(service=service, notification_id=REFERENCE, called="firetext")
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        post(FIRETEXT, fixture_text("firetext", "delivered.txt"))
    assert len(statements) == 1 and statements[0].startswith("WITH applicable AS")
    assert Notification.objects.get(id=REFERENCE).status == S.DELIVERED
