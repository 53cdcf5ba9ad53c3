"""The front page, receipts, providers and the statistics chart (Django's test client)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from receipts.models import Receipt, ReceiptState
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
    notification_make(service=service, status="delivered", notification_type="email")
    stuck = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=stuck.id).update(
        created_at=timezone.now() - timedelta(minutes=42, seconds=7),
        lease_until=timezone.now() + timedelta(seconds=30),  # claimed a minute ago
    )
    retrying = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=retrying.id).update(
        next_attempt_at=timezone.now() + timedelta(minutes=4), retry_count=1
    )
    now = timezone.now()
    for outcome in ("error", "error", "success", "success"):
        SendAttempt.objects.create(
            notification=stuck, provider="mmg", started_at=now, duration_ms=5, outcome=outcome
        )
    mmg = ProviderDetails.objects.get(name="mmg")
    provider_update(provider=mmg, priority=40, active=True, changed_by="failover:errors",
                    reason="mmg: 10 errors in 60 s; 10 points to firetext")  # fmt: skip
    Receipt.objects.create(provider="mmg", body="{}", state=ReceiptState.FAILED)
    Receipt.objects.create(provider="mmg", body="{}", state=ReceiptState.GIVEN_UP)
    for state in (CallbackState.GIVEN_UP, CallbackState.GIVEN_UP, CallbackState.DELIVERED):
        CallbackEvent.objects.create(
            service=service, notification=notification_make(service=service, status="delivered"),
            kind="status", payload={}, state=state,
        )  # fmt: skip

    with django_assert_max_num_queries(35):
        page = _page(admin_client.get("/admin/"))
    counts = _section(page, "status-counts")
    # Texts and emails apart (the callback events' notifications are texts too).
    assert re.search(r"<th>delivered</th>\s*<td><a [^>]*>5</a></td>\s*<td><a [^>]*>1</a>", counts)
    assert re.search(r"<th>technical-failure</th>\s*<td><a [^>]*>1</a></td>", counts)
    assert re.search(r"<th>created</th>\s*<td><a [^>]*>2</a></td>", counts)
    drains = _section(page, "drains")
    # The one due now is 42 minutes old, to the second; the one waiting for its retry is not
    # counted as stuck: it is listed as a planned retry, with when.
    assert re.search(r"deliveries due</a></th>\s*<td>1</td>\s*<td>42 min [0-5][0-9] s ago", drains)
    assert re.search(r"Retries planned</a></th>\s*<td>1</td>\s*<td>next in [34] min", drains)
    # No qcluster runs in this test: the page says so, in red.
    assert 'id="no-workers"' in page
    assert 'class="console-alarm"' in drains and "no worker is running" in drains
    backlog = _section(page, "backlog")
    assert 'Receipts failed</a></th>\n        <td class="console-warn">1</td>' in backlog
    assert 'Receipts given-up</a></th>\n        <td class="console-warn">1</td>' in backlog
    given_up = (
        '<a href="/admin/webhooks/callbackevent/?state__exact=given-up">Callbacks given up</a>'
    )
    assert f'{given_up}</th><td class="console-warn">2</td>' in backlog
    assert "Callbacks retrying</a></th><td>0</td>" in backlog
    providers = _section(page, "providers")
    mmg_row = providers[providers.index('id="provider-mmg"') :]
    assert "2 of 4" in mmg_row
    assert "lowered" in mmg_row and "MMG lowered to 40 (resting 50)" in mmg_row
    assert "mmg: 10 errors in 60 s; 10 points to firetext" in mmg_row
    assert "Site administration" not in page or "Sending" in page  # the app list is still there


def _attempts(provider, notification, outcomes, *, minutes_ago=0):
    at = timezone.now() - timedelta(minutes=minutes_ago)
    for outcome in outcomes:
        SendAttempt.objects.create(
            notification=notification, provider=provider, started_at=at, outcome=outcome
        )


def test_a_failing_provider_is_named_in_red_over_5_and_60_minutes(admin_client, service):
    text = notification_make(service=service)
    _attempts("firetext", text, ["error"] * 12 + ["success"])
    _attempts("firetext", text, ["success"] * 7, minutes_ago=30)
    _attempts("mmg", text, ["success"] * 3)

    providers = _section(_page(admin_client.get("/admin/")), "providers")
    start = providers.rindex("<tr", 0, providers.index('id="provider-firetext"'))
    firetext = providers[start : providers.index("</tr>", start)]
    assert "console-alarm" in firetext
    assert "<strong>failing</strong>" in firetext
    assert "Firetext: 12 errors of 13 calls in the last 5 minutes" in firetext
    assert "12 of 13" in firetext and "12 of 20" in firetext
    mmg = providers[providers.rindex("<tr", 0, providers.index('id="provider-mmg"')) :]
    assert "<strong>healthy</strong>" in mmg and "console-alarm" not in mmg


def test_a_provider_taken_out_says_why_and_one_with_old_errors_only_reads_no_calls(
    admin_client, service
):
    text = notification_make(service=service)
    _attempts("mmg", text, ["error"] * 5, minutes_ago=20)
    mmg = ProviderDetails.objects.get(name="mmg")
    provider_update(provider=mmg, priority=50, active=False, changed_by="admin:ops",
                    reason="MMG says their SMSC is down")  # fmt: skip

    providers = _section(_page(admin_client.get("/admin/")), "providers")
    row = providers[providers.index('id="provider-mmg"') :]
    assert "<strong>taken out</strong>" in row
    assert "MMG is inactive: MMG says their SMSC is down" in row
    assert "no calls" in row and "5 of 5" in row  # nothing in 5 minutes; the hour still shows


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
    action = {"action": "replay", "_selected_action": [receipt.pk]}
    assert 'name="reason"' in _page(admin_client.post(RECEIPTS, action))
    response = admin_client.post(
        RECEIPTS, {**action, "apply": "1", "reason": "database was down"}, follow=True
    )
    assert "Replayed 1 receipt(s): 1 processed." in _page(response)
    sms.refresh_from_db()
    assert sms.status == NotificationStatus.DELIVERED
    history = _page(admin_client.get(f"{RECEIPTS}{receipt.pk}/history/"))
    assert "replayed: database was down" in history
    # The receipt's page links to the notification it names.
    detail = _page(admin_client.get(f"{RECEIPTS}{receipt.pk}/change/"))
    assert f'href="/admin/sending/notification/{sms.id}/change/"' in detail


def test_a_rejected_receipt_links_to_the_notification_its_body_names(admin_client, service):
    sms = notification_make(service=service)
    rejected = Receipt.objects.create(
        provider="mmg",
        body=f'{{"CID": "{sms.id}", "MSISDN": "447700900123"}}',
        content_type="application/json",
        state=ReceiptState.REJECTED,
        outcome="MMG callback failed: status missing",
    )
    detail = _page(admin_client.get(f"{RECEIPTS}{rejected.pk}/change/"))
    assert f'href="/admin/sending/notification/{sms.id}/change/"' in detail


def test_statistics_page_has_the_last_24_hours_by_hour_and_channel(
    admin_client, service, monkeypatch
):
    # One fixed moment in the middle of an hour: a run across an hour's end can't shift a count.
    half_past = timezone.localtime().replace(minute=30, second=0, microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: half_past)
    notification_make(service=service, created_at=half_past)
    notification_make(service=service, created_at=half_past - timedelta(minutes=20))
    notification_make(service=service, notification_type="email", created_at=half_past)
    notification_make(service=service, created_at=half_past - timedelta(hours=3))
    notification_make(service=service, created_at=half_past - timedelta(hours=25))  # too old

    page = _page(admin_client.get("/admin/statistics/"))
    hourly = page[page.index('id="chart-hourly"') :]
    assert "<svg" in hourly
    texts = re.search(r"<th>texts</th>((?:<td>\d+</td>){24})</tr>", hourly).group(1)
    emails = re.search(r"<th>emails</th>((?:<td>\d+</td>){24})</tr>", hourly).group(1)
    texts = [int(n) for n in re.findall(r"\d+", texts)]
    emails = [int(n) for n in re.findall(r"\d+", emails)]
    assert texts[-1] == 2 and texts[-4] == 1 and sum(texts) == 3
    assert emails[-1] == 1 and sum(emails) == 1


def test_view_site_lands_on_the_api_docs_and_templates_show_ids_and_parts(admin_client, service):
    from sending.templates import template_create

    page = _page(admin_client.get("/admin/"))
    assert 'href="/docs/"' in page
    assert admin_client.get("/docs/").status_code == 200
    template = template_create(
        service=service, template_type="sms", name="Long", subject="", body="x" * 200,
        created_by="test",
    )  # fmt: skip
    listing = _page(admin_client.get("/admin/sending/template/"))
    assert str(template.id) in listing
    assert '<td class="field-parts">2</td>' in listing


def _priority_gauges(statsd) -> list[str]:
    """The `providers.*.priority` gauges sent since the last look (contract section 8: on every
    change), by provider."""
    return sorted(line for line in statsd.received() if line.startswith("notify.providers."))


def _provider_form(provider, **changes):
    return {"priority": provider.priority, "active": "on" if provider.active else "", **changes}


def test_provider_priority_needs_a_reason_and_lands_in_the_history(
    admin_client, statsd, django_capture_on_commit_callbacks
):
    firetext = ProviderDetails.objects.get(name="firetext")
    url = f"{PROVIDERS}{firetext.pk}/change/"
    with django_capture_on_commit_callbacks(execute=True):
        refused = _page(admin_client.post(url, _provider_form(firetext, priority=70)))
    assert "Say why the priority or the active flag changes." in refused
    firetext.refresh_from_db()
    assert firetext.priority == 50
    assert _priority_gauges(statsd) == []

    with django_capture_on_commit_callbacks(execute=True):  # the gauge goes once committed
        response = admin_client.post(
            url, _provider_form(firetext, priority=70, reason="MMG slow tonight", _continue="1")
        )
    assert response.status_code == 302
    firetext.refresh_from_db()
    assert firetext.priority == 70
    assert _priority_gauges(statsd) == ["notify.providers.firetext.priority:70|g"]
    history = _page(admin_client.get(url))
    history = history[history.index('id="history"') :]
    assert "admin:operator" in history
    assert "MMG slow tonight" in history
    assert history.index("MMG slow tonight") < history.index("initial provider set-up")


@pytest.mark.parametrize("object_id", ["x", "1x", "99999"])
def test_a_provider_page_for_an_id_that_is_no_providers_says_so(admin_client, object_id):
    """Not a 500: the admin's own "doesn't exist" answer, back to the list."""
    response = admin_client.get(f"{PROVIDERS}{object_id}/change/")
    assert response.status_code == 302
    assert response.url == "/admin/"
    messages = [str(message) for message in response.wsgi_request._messages]
    assert messages == [f"provider with ID “{object_id}” doesn’t exist. Perhaps it was deleted?"]


def test_provider_list_is_not_editable_in_place(admin_client):
    assert 'name="form-0-priority"' not in _page(admin_client.get(PROVIDERS))


def test_return_to_the_resting_split(admin_client, statsd, django_capture_on_commit_callbacks):
    firetext = ProviderDetails.objects.get(name="firetext")
    mmg = ProviderDetails.objects.get(name="mmg")
    with django_capture_on_commit_callbacks(execute=True):  # the gauges go once committed
        provider_update(provider=firetext, priority=90, active=True, changed_by="x", reason="y")
        provider_update(provider=mmg, priority=10, active=True, changed_by="x", reason="y")
    assert _priority_gauges(statsd) == [
        "notify.providers.firetext.priority:90|g",
        "notify.providers.mmg.priority:10|g",
    ]
    data = {"action": "rest", "_selected_action": [firetext.pk, mmg.pk]}
    assert 'name="reason"' in _page(admin_client.post(PROVIDERS, data))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(PROVIDERS, {**data, "apply": "1", "reason": "incident over"})
    assert response.status_code == 302
    firetext.refresh_from_db()
    mmg.refresh_from_db()
    assert (firetext.priority, mmg.priority) == (50, 50)
    latest = mmg.history.first()
    assert (latest.changed_by, latest.reason) == ("admin:operator", "incident over")
    assert _priority_gauges(statsd) == [
        "notify.providers.firetext.priority:50|g",
        "notify.providers.mmg.priority:50|g",
    ]


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


@pytest.mark.parametrize(
    "query",
    [
        "/admin/sending/notification/?status__exact=%00",
        "/admin/sending/notification/?provider=%00",
        "/admin/sending/sendattempt/?outcome__exact=%00",
        "/admin/callbacks/receipt/?provider__exact=%00",
        "/admin/callbacks/receivedtext/?provider=%00",
        "/admin/webhooks/callbackevent/?kind__exact=a%00b",
        "/admin/django_q/schedule/?schedule_type__exact=%00",
    ],
)
def test_a_list_filter_with_a_nul_is_refused_naming_it(admin_client, query):
    """PostgreSQL text can't hold a NUL: a filter value with one answered 500 there."""
    response = admin_client.get(query)
    assert response.status_code == 400
    name = query.split("?")[1].split("=")[0]
    assert response.content.decode() == f"{name} must not contain a NUL character"


@pytest.mark.parametrize("page", ["change", "history", "delete"])
def test_an_object_id_with_a_nul_is_refused_naming_it(admin_client, page):
    """django_q's task ids are text: one with a NUL reached PostgreSQL (500 there)."""
    response = admin_client.get(f"/admin/django_q/failure/a%00b/{page}/")
    assert response.status_code == 400
    assert response.content.decode() == "object_id must not contain a NUL character"


@pytest.mark.parametrize(
    ("listed", "action", "selected", "problem"),
    [
        (RECEIPTS, "replay", "x", "'x' is not an id of a receipt"),
        ("/admin/sending/notification/", "mark_technical_failure", "42",
         "'42' is not an id of a notification"),
        ("/admin/webhooks/callbackevent/", "send_again", "x",
         "'x' is not an id of a callback event"),
        ("/admin/django_q/failure/", "delete_selected", "a\x00b",
         "must not contain a NUL character"),
    ],
)  # fmt: skip
def test_an_action_on_an_id_that_is_none_of_the_models_is_refused(
    admin_client, listed, action, selected, problem
):
    """Posted by hand (the list's checkboxes only offer real ids): no 500, nothing changed."""
    data = {"action": action, "_selected_action": [selected], "apply": "1", "reason": "r"}
    response = admin_client.post(listed, data)
    assert response.status_code == 400
    assert response.content.decode() == f"_selected_action {problem}"


def test_an_action_on_real_ids_still_runs(admin_client, service):
    stuck = notification_make(service=service, status=NotificationStatus.SENDING)
    data = {"action": "mark_technical_failure", "_selected_action": [str(stuck.id)],
            "apply": "1", "reason": "stuck"}  # fmt: skip
    admin_client.post("/admin/sending/notification/", data)
    stuck.refresh_from_db()
    assert stuck.status == NotificationStatus.TECHNICAL_FAILURE


def test_a_list_filter_without_a_nul_still_filters(admin_client, service):
    delivered = notification_make(service=service, status="delivered")
    failed = notification_make(service=service, status="technical-failure")
    page = _page(admin_client.get("/admin/sending/notification/?status__exact=delivered"))
    assert str(delivered.id) in page
    assert str(failed.id) not in page


def test_front_page_shows_each_drain_and_the_calls_in_flight(admin_client, service):
    waiting = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=waiting.id).update(
        queued_at=timezone.now() - timedelta(minutes=3, seconds=5)
    )
    sending = notification_make(service=service, status=NotificationStatus.CREATED)
    Notification.objects.filter(id=sending.id).update(
        queued_at=timezone.now(), lease_until=timezone.now() + timedelta(seconds=60)
    )
    SendAttempt.objects.create(
        notification=sending, provider="mmg", started_at=timezone.now(), outcome="started"
    )

    drains = _section(_page(admin_client.get("/admin/")), "drains")

    assert re.search(
        r"sms waiting for a drain</th>\s*<td>1</td>\s*<td>3 min [0-5][0-9] s ago", drains
    )
    assert re.search(r"email waiting for a drain</th>\s*<td>0</td>\s*<td>none", drains)
    assert re.search(r"calls in flight to mmg</th>\s*<td>1</td>", drains)
