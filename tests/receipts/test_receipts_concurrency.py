"""Conflicting receipts posted at once from several threads, each with its own database
connection (PostgreSQL only: SQLite serialises every writer anyway)."""

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.utils import timezone

from sending.models import FAILURE_STATUSES, Notification, NotificationStatus, Service
from stats.services import daily_statistics_recount
from tests.receipts.conftest import FIRETEXT, MMG, fixture_text, post
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus
NOTIFICATIONS = 40
THREADS = 8

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://…)"
    ),
]


def conflicting_receipts(notification_id) -> list:
    firetext = {"mobile": "447700900123", "reference": notification_id}
    mmg = json.loads(fixture_text("mmg", "delivered.json")) | {"CID": str(notification_id)}
    receipts = [
        (FIRETEXT, urlencode({**firetext, "status": "0"})),
        (FIRETEXT, urlencode({**firetext, "status": "2"})),
        (FIRETEXT, urlencode({**firetext, "status": "1", "code": "101"})),
        (FIRETEXT, urlencode({**firetext, "status": "1"})),
        (MMG, json.dumps(mmg | {"status": "3", "substatus": "5"})),
        (MMG, json.dumps(mmg | {"status": "4", "substatus": "6"})),
    ]
    return receipts * 3  # every receipt three times


@pytest.mark.django_db(transaction=True)
def test_conflicting_receipts_at_once_count_each_notification_exactly_once():
    service = Service.objects.create(name="Concurrency")
    notifications = [
        notification_make(service=service, called="firetext") for _ in range(NOTIFICATIONS)
    ]
    work = [r for n in notifications for r in conflicting_receipts(n.id)]
    random.Random(5).shuffle(work)
    start = threading.Barrier(THREADS)

    def worker(share):
        try:
            start.wait()
            return [post(endpoint, body).status_code for endpoint, body in share]
        finally:
            connection.close()

    with ThreadPoolExecutor(THREADS) as pool:
        answers = pool.map(worker, [work[i::THREADS] for i in range(THREADS)])
        codes = [code for share in answers for code in share]

    assert codes == [200] * len(work)
    statuses = list(Notification.objects.filter(service=service).values_list("status", flat=True))
    assert all(s == S.DELIVERED or s in FAILURE_STATUSES for s in statuses)
    counted = statistics_of(service)
    assert counted["sms_requested"] == NOTIFICATIONS
    assert counted["sms_delivered"] == statuses.count(S.DELIVERED)
    assert counted["sms_delivered"] + counted["sms_failed"] == NOTIFICATIONS
    day = timezone.localdate(notifications[0].created_at)
    assert counted == daily_statistics_recount(day=day)[service.id]
