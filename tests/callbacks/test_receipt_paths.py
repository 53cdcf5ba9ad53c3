"""PostgreSQL: the single-statement receipt path (`status_change_ctes`) against the ordinary one
(`notification_update_status`), for every receipt fixture and every status a notification can
be in: the same answer, the same stored receipt, the same notification, the same statistics."""

import json
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from callbacks import services as receipt_services
from callbacks.models import Receipt
from sending.models import Notification, NotificationStatus
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


def _receipts():
    for path in sorted((FIXTURES / "firetext_receipts").iterdir()):
        yield pytest.param(FIRETEXT, path.read_bytes(), "sms", id=f"firetext-{path.name}")
    for path in sorted((FIXTURES / "mmg_receipts").iterdir()):
        yield pytest.param(MMG, path.read_bytes(), "sms", id=f"mmg-{path.name}")
    for path in sorted((FIXTURES / "ses_receipts").iterdir()):
        if path.name in ("mail.json", "sns_notification.json", "truncated_json.txt"):
            continue
        if path.name.startswith("sns_"):  # the envelopes of other message types
            body = fixture_text("ses", path.name)
            if "SubscribeURL" in body and "Unsubscribe" not in body:
                continue  # a subscription confirmation visits a URL: not a status receipt
        else:
            body = json.dumps(sns_envelope(ses_notification(path.name)))
        yield pytest.param(SES, body.encode(), "email", id=f"ses-{path.name}")
    yield pytest.param(SES, fixture_text("ses", "truncated_json.txt").encode(), "email", id="ses-t")


def _outcome(service, endpoint, body, kind, start, sent_at):
    """Post the receipt to a notification in `start` (None: no notification) and read what a
    user would see; everything is rolled back after."""
    with transaction.atomic():
        if start is not None:
            notification_make(
                service=service,
                notification_type=kind,
                status=start,
                notification_id=REFERENCE,
                provider_reference=SES_MESSAGE_ID,
                sent_at=None if start == S.CREATED else sent_at,
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
            "statistics": list(
                DailyStatistics.objects.values("service_id", "day", *STATISTICS_FIELDS)
            ),
        }
        transaction.set_rollback(True)
    return seen


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s or "none")
@pytest.mark.parametrize(("endpoint", "body", "kind"), list(_receipts()))
def test_both_paths_end_alike(service, monkeypatch, endpoint, body, kind, start):
    sent_at = timezone.now() - timedelta(minutes=1)
    monkeypatch.setattr(receipt_services, "SINGLE_STATEMENT_ON_POSTGRESQL", True)
    single = _outcome(service, endpoint, body, kind, start, sent_at)
    monkeypatch.setattr(receipt_services, "SINGLE_STATEMENT_ON_POSTGRESQL", False)
    ordinary = _outcome(service, endpoint, body, kind, start, sent_at)

    assert single == ordinary
    assert single["receipts"], "every receipt is stored"


def test_the_single_statement_is_really_taken(service, monkeypatch):
    """The comparison above means something only if the two paths differ in what they run."""
    notification_make(service=service, status=S.SENDING, notification_id=REFERENCE)
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        post(FIRETEXT, fixture_text("firetext", "delivered.txt"))
    assert len(statements) == 1 and statements[0].startswith("WITH before AS")
    assert Notification.objects.get(id=REFERENCE).status == S.DELIVERED
