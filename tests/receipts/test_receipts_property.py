"""Any receipts, repeated, in any order, over many notifications: each notification ends in
the status the rules of contract section 3 give, and the statistics equal a recount."""

import json
import uuid
from urllib.parse import urlencode

from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sending.models import Notification, NotificationStatus, NotificationType, Service
from stats.services import daily_statistics_recount
from tests.receipts.conftest import (
    FIRETEXT,
    MMG,
    SES,
    fixture_text,
    post,
    ses_notification,
    sns_envelope,
)
from tests.stats.factories import notification_make, statistics_of

S = NotificationStatus
FINAL = {S.DELIVERED, S.PERMANENT_FAILURE, S.TEMPORARY_FAILURE, S.TECHNICAL_FAILURE}

# What each receipt means, as the contract's tables say. "declined" depends on the code;
# None means "permanent, or temporary from pending".
FIRETEXT_RECEIPTS = {
    ("0", ""): S.DELIVERED,
    ("2", ""): S.PENDING,
    ("1", "101"): S.PERMANENT_FAILURE,
    ("1", "102"): S.TEMPORARY_FAILURE,
    ("1", ""): None,
    ("1", "555"): None,
    ("7", ""): S.TECHNICAL_FAILURE,
}
MMG_RECEIPTS = {
    ("3", "5"): S.DELIVERED,
    ("2", "1"): S.PERMANENT_FAILURE,
    ("4", "6"): S.TEMPORARY_FAILURE,
    ("5", "52"): S.PERMANENT_FAILURE,
    ("8", "1"): S.TECHNICAL_FAILURE,
}
SES_RECEIPTS = {
    "delivery.json": S.DELIVERED,
    "bounce_permanent.json": S.PERMANENT_FAILURE,
    "bounce_transient.json": S.TEMPORARY_FAILURE,
    "complaint.json": "unchanged",
}
PROVIDERS = {"firetext": FIRETEXT_RECEIPTS, "mmg": MMG_RECEIPTS, "ses": SES_RECEIPTS}


def expected_after(status: str, meaning) -> str:
    if status in FINAL or meaning == "unchanged":
        return status
    if meaning is None:
        return S.TEMPORARY_FAILURE if status == S.PENDING else S.PERMANENT_FAILURE
    if meaning == S.PENDING:
        return S.PENDING
    return meaning


def post_receipt(provider: str, receipt, notification: Notification):
    if provider == "firetext":
        status, code = receipt
        fields = {"mobile": "447700900123", "status": status, "reference": notification.id}
        return post(FIRETEXT, urlencode({**fields, **({"code": code} if code else {})}))
    if provider == "mmg":
        status, substatus = receipt
        body = json.loads(fixture_text("mmg", "delivered.json"))
        body.update(CID=str(notification.id), status=status, substatus=substatus)
        return post(MMG, json.dumps(body))
    ses = ses_notification(receipt)
    ses["mail"]["messageId"] = notification.provider_reference
    return post(SES, json.dumps(sns_envelope(ses)))


notifications = st.lists(
    st.tuples(
        st.sampled_from(list(PROVIDERS)),
        st.sampled_from([S.CREATED, S.SENDING, S.PENDING, S.DELIVERED]),
    ),
    min_size=1,
    max_size=6,
)


@st.composite
def scenarios(draw):
    made = draw(notifications)
    receipts = draw(
        st.lists(
            st.integers(0, len(made) - 1).flatmap(
                lambda i: st.tuples(st.just(i), st.sampled_from(list(PROVIDERS[made[i][0]])))
            ),
            max_size=16,
        )
    )
    return made, receipts


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_any_receipts_in_any_order_end_in_the_rules_status_and_exact_counts(db, scenario):
    made, receipts = scenario
    # Each example has a service of its own; the database is not emptied between examples.
    service = Service.objects.create(name=f"property {uuid.uuid4()}")
    sent = [
        notification_make(
            service=service,
            status=start,
            notification_type=NotificationType.EMAIL if provider == "ses" else NotificationType.SMS,
            provider_reference=f"ses-{uuid.uuid4()}" if provider == "ses" else None,
            called=provider,
        )
        for provider, start in made
    ]
    expected = [start for _, start in made]

    for index, receipt in receipts:
        provider = made[index][0]
        response = post_receipt(provider, receipt, sent[index])
        assert response.status_code in (200, 400)
        expected[index] = expected_after(expected[index], PROVIDERS[provider][receipt])

    statuses = dict(Notification.objects.filter(service=service).values_list("id", "status"))
    assert [statuses[n.id] for n in sent] == expected
    day = timezone.localdate(sent[0].created_at)
    counted = statistics_of(service, day)
    assert counted == daily_statistics_recount(day=day)[service.id]
    assert counted["sms_delivered"] + counted["emails_delivered"] == expected.count(S.DELIVERED)
    assert counted["sms_failed"] + counted["emails_failed"] == len(
        [status for status in expected if status in FINAL - {S.DELIVERED}]
    )
