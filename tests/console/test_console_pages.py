"""The front page, receipts, providers and the statistics chart (Django's test client)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from callbacks.models import Receipt, ReceiptState
from sending.models import (
    Notification,
    NotificationStatus,
    NotificationType,
    ProviderDetails,
    SendAttempt,
)
from sending.providers import provider_update
from tests.stats.factories import notification_make
from webhooks.models import CallbackEvent, CallbackState

RECEIPTS = "/admin/callbacks/receipt/"
PROVIDERS = "/admin/sending/providerdetails/"


def _page(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def _section(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</table>", start)]


def test_front_page_figures(admin_client, service, django_assert_max_num_queries):
    for status in ("delivered", "delivered", "technical-failure"):
        notification_make(service=service, status=status)
    stuck = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=stuck.id).update(
        created_at=timezone.now() - timedelta(minutes=42),
        lease_until=timezone.now() + timedelta(seconds=30),  # claimed a minute ago
    )
    now = timezone.now()
    for outcome in ("error", "error", "success", "success"):
        SendAttempt.objects.create(
            notification=stuck, provider="mmg", started_at=now, duration_ms=5, outcome=outcome
        )
    mmg = ProviderDetails.objects.get(name="mmg")
    provider_update(provider=mmg, priority=40, active=True, changed_by="failover:errors",
                    reason="10 errors in 60 s")  # fmt: skip
    Receipt.objects.create(provider="mmg", body="{}", state=ReceiptState.FAILED)
    Receipt.objects.create(provider="mmg", body="{}", state=ReceiptState.GIVEN_UP)
    for state in (CallbackState.GIVEN_UP, CallbackState.GIVEN_UP, CallbackState.DELIVERED):
        CallbackEvent.objects.create(
            service=service, notification=notification_make(service=service, status="delivered"),
            kind="status", payload={}, state=state,
        )  # fmt: skip

    with django_assert_max_num_queries(25):
        page = _page(admin_client.get("/admin/"))
    counts = _section(page, "status-counts")
    assert "delivered</a></th>\n        <td>5</td>" in counts
    assert "technical-failure</a></th>\n        <td>1</td>" in counts
    assert "created</a></th>\n        <td>1</td>" in counts
    assert "pending</a></th>\n        <td>0</td>" in counts
    backlog = _section(page, "backlog")
    assert "42\xa0minutes ago" in backlog
    assert "1\xa0minute ago" in backlog
    assert 'Receipts failed</a></th>\n        <td class="console-warn">1</td>' in backlog
    assert 'Receipts given-up</a></th>\n        <td class="console-warn">1</td>' in backlog
    given_up = (
        '<a href="/admin/webhooks/callbackevent/?state__exact=given-up">Callbacks given up</a>'
    )
    assert f'{given_up}</th><td class="console-warn">2</td>' in backlog
    assert "Callbacks retrying</a></th><td>0</td>" in backlog
    providers = _section(page, "providers")
    assert "2 of 4" in providers
    assert "failover:errors: 10 errors in 60 s" in providers
    assert "Site administration" not in page or "Sending" in page  # the app list is still there


def test_receipts_list_outcomes_and_filters(admin_client, service, django_assert_max_num_queries):
    sms = notification_make(service=service)
    made = {
        "processed": ("now delivered", ReceiptState.PROCESSED),
        "duplicate": ("unchanged: already delivered", ReceiptState.PROCESSED),
        "unknown": ("unknown notification", ReceiptState.PROCESSED),
        "rejected": ("Firetext callback failed: status missing", ReceiptState.REJECTED),
        "failed": ("OperationalError()", ReceiptState.FAILED),
    }
    ids = {}
    for key, (outcome, state) in made.items():
        ids[key] = Receipt.objects.create(
            provider="firetext",
            body=f"mobile=447700900123&reference={sms.id}&status=0",
            content_type="application/x-www-form-urlencoded",
            state=state,
            outcome=outcome,
            reference=str(sms.id),
        ).pk
    with django_assert_max_num_queries(10):
        page = _page(admin_client.get(RECEIPTS))
    assert "447700900123" not in page
    for key in made:
        filtered = _page(admin_client.get(RECEIPTS, {"outcome": key}))
        found = {
            k for k, pk in ids.items() if f'"/admin/callbacks/receipt/{pk}/change/' in filtered
        }
        assert found == {key}, key
    assert "status missing" in _page(admin_client.get(RECEIPTS, {"outcome": "rejected"}))
    detail = _page(admin_client.get(f"{RECEIPTS}{ids['failed']}/change/"))
    assert "mobile=4477******23" in detail
    assert "447700900123" not in detail


def test_receipt_replay_applies_a_failed_receipt(admin_client, service):
    sms = notification_make(service=service, called="firetext")
    receipt = Receipt.objects.create(
        provider="firetext",
        body=f"reference={sms.id}&status=0",
        content_type="application/x-www-form-urlencoded",
        state=ReceiptState.FAILED,
    )
    response = admin_client.post(
        RECEIPTS, {"action": "replay", "_selected_action": [receipt.pk]}, follow=True
    )
    assert "Replayed 1 receipt(s): 1 processed." in _page(response)
    sms.refresh_from_db()
    assert sms.status == NotificationStatus.DELIVERED


def _provider_form(provider, **changes):
    return {"priority": provider.priority, "active": "on" if provider.active else "", **changes}


def test_provider_priority_needs_a_reason_and_lands_in_the_history(admin_client):
    firetext = ProviderDetails.objects.get(name="firetext")
    url = f"{PROVIDERS}{firetext.pk}/change/"
    refused = _page(admin_client.post(url, _provider_form(firetext, priority=70)))
    assert "Say why the priority or the active flag changes." in refused
    firetext.refresh_from_db()
    assert firetext.priority == 50

    response = admin_client.post(
        url, _provider_form(firetext, priority=70, reason="MMG slow tonight", _continue="1")
    )
    assert response.status_code == 302
    firetext.refresh_from_db()
    assert firetext.priority == 70
    history = _page(admin_client.get(url))
    history = history[history.index('id="history"') :]
    assert "admin:operator" in history
    assert "MMG slow tonight" in history
    assert history.index("MMG slow tonight") < history.index("initial provider set-up")


def test_provider_list_is_not_editable_in_place(admin_client):
    assert 'name="form-0-priority"' not in _page(admin_client.get(PROVIDERS))


def test_return_to_the_resting_split(admin_client):
    firetext = ProviderDetails.objects.get(name="firetext")
    mmg = ProviderDetails.objects.get(name="mmg")
    provider_update(provider=firetext, priority=90, active=True, changed_by="x", reason="y")
    provider_update(provider=mmg, priority=10, active=True, changed_by="x", reason="y")
    data = {"action": "rest", "_selected_action": [firetext.pk, mmg.pk]}
    assert 'name="reason"' in _page(admin_client.post(PROVIDERS, data))
    response = admin_client.post(PROVIDERS, {**data, "apply": "1", "reason": "incident over"})
    assert response.status_code == 302
    firetext.refresh_from_db()
    mmg.refresh_from_db()
    assert (firetext.priority, mmg.priority) == (50, 50)
    latest = mmg.history.first()
    assert (latest.changed_by, latest.reason) == ("admin:operator", "incident over")


def test_statistics_chart_is_inline_svg_with_the_table(admin_client, service):
    notification_make(service=service, status=NotificationStatus.DELIVERED)
    notification_make(
        service=service, notification_type=NotificationType.EMAIL, status="permanent-failure"
    )
    page = _page(admin_client.get("/admin/statistics/"))
    assert "<svg" in page
    assert "Test service" in page
    assert "texts delivered" in page
    assert "emails failed" in page
    assert "text parts sent" in page
    assert "<script" not in page[page.index("<svg") : page.index("</svg>")]
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "https://" not in svg
    assert "http://" not in svg.replace('"http://www.w3.org/', "")
    rows = page[page.index('class="console-statistics"') :]
    today = timezone.localdate()
    assert f"{today:%a} {today.day} {today:%b}" in rows


@pytest.mark.parametrize("url", ["/admin/sending/sendattempt/", "/admin/stats/dailystatistics/"])
def test_other_lists_open(admin_client, service, url, django_assert_max_num_queries):
    notification_make(service=service)
    with django_assert_max_num_queries(10):
        _page(admin_client.get(url))


def test_healthz_reports_the_backlog(client, service):
    stuck = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=stuck.id).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    answer = client.get("/healthz").json()
    assert 290 < answer["oldest_created_seconds"] < 400
    assert answer["oldest_claim_seconds"] is None
