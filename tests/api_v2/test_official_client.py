"""GOV.UK Notify's official Python client, unchanged, against our /v2 API on a real server."""

import uuid
from datetime import timedelta
from urllib.parse import quote_plus

import pytest
import requests
from django.utils import timezone
from notifications_python_client import authentication, prepare_upload
from notifications_python_client.errors import HTTPError

from fakes import Behaviour
from receipts.inbound_numbers import inbound_number_set
from receipts.models import ReceivedText
from sending.models import Notification, ProviderDetails, Service, Template
from sending.senders import email_reply_to_add, sms_sender_add
from sending.services import notification_create
from sending.templates import template_create, template_update
from stats.models import DailyStatistics
from tests.api_v2 import schemas
from tests.api_v2.conftest import poll
from tests.fakes import running_fake_providers
from tests.receipts.conftest import inbox_drain

pytestmark = pytest.mark.django_db(transaction=True)


def error_of(raised: pytest.ExceptionInfo) -> tuple[int, list[dict]]:
    body = raised.value.response.json()
    schemas.assert_matches(body, schemas.ERROR)
    assert body["status_code"] == raised.value.status_code
    return raised.value.status_code, body["errors"]


def test_a_text_from_a_template_reaches_the_provider_personalised_and_is_delivered(
    v2, sms_template, fake
):
    answer = v2.client.send_sms_notification(
        phone_number="07700 900123",
        template_id=str(sms_template.id),
        personalisation={"first name": "Ada", "CODE": 123456, "unused": "ignored"},
        reference="council-tax-1",
    )

    schemas.assert_matches(answer, schemas.POST_SMS)
    body = "Hello Ada, your code is 123456."
    assert answer["content"] == {"body": body, "from_number": "NOTIFY"}
    assert answer["reference"] == "council-tax-1"
    assert answer["uri"] == f"{v2.url}/v2/notifications/{answer['id']}"
    assert answer["template"] == {
        "id": str(sms_template.id),
        "version": 1,
        "uri": f"{v2.url}/v2/template/{sms_template.id}/version/1",
    }
    [sent] = fake.requests("firetext")
    assert sent["reference"] == answer["id"]
    assert sent["fields"]["message"] == body
    assert sent["fields"]["to"] == "447700900123"

    # The receipt comes back through the ordinary receipt endpoint.
    shown = poll(
        lambda: (
            (n := v2.client.get_notification_by_id(answer["id"]))["status"] == "delivered" and n
        ),
        what="the text delivered",
    )
    schemas.assert_matches(shown, schemas.GET_NOTIFICATION)
    assert shown["type"] == "sms"
    assert shown["body"] == body
    assert shown["phone_number"] == "447700900123"
    assert shown["email_address"] is None and shown["subject"] is None
    assert shown["template"] == answer["template"]
    assert shown["completed_at"] is not None and shown["sent_at"] is not None
    row = Notification.objects.get(id=answer["id"])
    assert (row.template_id, row.template_version, row.sent_by) == (sms_template.id, 1, "firetext")
    stats = DailyStatistics.objects.get(service=v2.service)
    assert (stats.sms_requested, stats.sms_delivered) == (1, 1)


def test_the_same_key_string_is_a_bearer_key_on_the_api_of_section_4(v2, sms_template):
    answer = v2.client.send_sms_notification(
        "07700900123", str(sms_template.id), {"first name": "Ada", "code": "1"}
    )
    plain = requests.get(
        f"{v2.url}/notifications/{answer['id']}",
        headers={"Authorization": f"Bearer {v2.key}"},
        timeout=10,
    )
    assert plain.status_code == 200
    assert plain.json()["content"] == "Hello Ada, your code is 1."


def test_each_notification_accepted_on_v2_is_counted_by_channel(
    v2, sms_template, email_template, statsd
):
    """Contract section 8: `api.notifications.{sms,email}.created` counts /v2's acceptances too."""
    v2.client.send_sms_notification(
        "07700900123", str(sms_template.id), {"first name": "A", "code": "1"}
    )
    v2.client.send_email_notification(
        "a@example.com", str(email_template.id), {"name": "A", "month": "May", "amount": "£1"}
    )
    with pytest.raises(HTTPError):  # a missing placeholder: refused, not counted
        v2.client.send_sms_notification("07700900123", str(sms_template.id), {})

    lines = statsd.received()
    created = sorted(line for line in lines if line.endswith(".created:1|c"))
    assert created == [
        "notify.api.notifications.email.created:1|c",
        "notify.api.notifications.sms.created:1|c",
    ]


def test_an_email_from_a_template_with_a_reply_to_and_sanitised_content(v2, email_template, fake):
    email_reply_to_add(service=v2.service, email_address="tax@council.example", is_default=True)
    answer = v2.client.send_email_notification(
        email_address="someone@example.com",
        template_id=str(email_template.id),
        personalisation={"month": "May", "name": "*Ada* [x](http://evil.example)", "amount": "£5"},
        sanitise_content_for=["name"],
        one_click_unsubscribe_url="https://council.example/unsubscribe?u=1",
    )

    schemas.assert_matches(answer, schemas.POST_EMAIL)
    body = "Dear \\*Ada\\* \\[x\\]\\(http://evil\\.example\\),\n\nYou owe £5.\n\nThe council"
    assert answer["content"] == {
        "body": body,
        "subject": "Your bill for May",
        "from_email": "notifications@example.com",
        "one_click_unsubscribe_url": "https://council.example/unsubscribe?u=1",
    }
    assert answer["sanitised_content"] == {
        "name": {
            "unsanitised": "*Ada* [x](http://evil.example)",
            "sanitised": "\\*Ada\\* \\[x\\]\\(http://evil\\.example\\)",
        }
    }
    [sent] = fake.requests("ses")
    simple = sent["fields"]["Content"]["Simple"]
    assert simple["Subject"]["Data"] == "Your bill for May"
    assert simple["Body"]["Text"]["Data"] == body
    assert sent["fields"]["ReplyToAddresses"] == ["tax@council.example"]
    shown = poll(
        # SES receipts name SES's message id, which the fake may post before the worker has
        # stored it (then the receipt is kept as for an unknown notification): sent is enough.
        lambda: (
            (n := v2.client.get_notification_by_id(answer["id"]))["status"]
            in {"sending", "delivered"}
            and n
        ),
        what="the email sent",
    )
    schemas.assert_matches(shown, schemas.GET_NOTIFICATION)
    assert (shown["email_address"], shown["subject"]) == (
        "someone@example.com",
        "Your bill for May",
    )


def test_a_named_sms_sender_is_the_from_of_the_text(v2, sms_template, fake):
    sms_sender_add(service=v2.service, sms_sender="COUNCIL", is_default=True)
    other = sms_sender_add(service=v2.service, sms_sender="TAXOFFICE")
    default = v2.client.send_sms_notification(
        "07700900123", str(sms_template.id), {"first name": "A", "code": "1"}
    )
    named = v2.client.send_sms_notification(
        "07700900123",
        str(sms_template.id),
        {"first name": "B", "code": "2"},
        sms_sender_id=str(other.id),
    )

    assert default["content"]["from_number"] == "COUNCIL"
    assert named["content"]["from_number"] == "TAXOFFICE"
    senders = {r["reference"]: r["fields"]["from"] for r in fake.requests("firetext")}
    assert senders == {default["id"]: "COUNCIL", named["id"]: "TAXOFFICE"}


def test_a_changed_template_or_default_sender_is_used_at_once_though_both_are_cached(
    v2, sms_template
):
    """Templates and default senders are read through the shared cache (issue 15's speed); a
    change is written through, so the very next send takes the new version and sender."""

    def send(code: str) -> dict:
        return v2.client.send_sms_notification(
            "07700900123", str(sms_template.id), {"first name": "A", "code": code}
        )

    sms_sender_add(service=v2.service, sms_sender="COUNCIL")
    first = send("1")  # both cached now
    template_update(template=sms_template, body="Code ((code)) for ((first name))")
    sms_sender_add(service=v2.service, sms_sender="TAXOFFICE", is_default=True)
    second = send("2")

    assert (first["content"]["body"], first["content"]["from_number"]) == (
        "Hello A, your code is 1.",
        "COUNCIL",
    )
    assert (second["content"]["body"], second["content"]["from_number"]) == (
        "Code 2 for A",
        "TAXOFFICE",
    )
    assert (second["template"]["version"], first["template"]["version"]) == (2, 1)
    versions = dict(Notification.objects.values_list("id", "template_version"))
    assert versions == {uuid.UUID(first["id"]): 1, uuid.UUID(second["id"]): 2}

    unused = template_create(service=v2.service, template_type="sms", name="U", body="((x))")
    unused_id = str(unused.id)
    for expected in ("Missing personalisation: x", "Template not found"):  # cached, then gone
        with pytest.raises(HTTPError) as raised:
            v2.client.send_sms_notification("07700900123", unused_id)
        assert error_of(raised) == (400, [{"error": "BadRequestError", "message": expected}])
        Template.objects.filter(id=unused_id).delete()


def test_another_services_sender_or_reply_to_is_refused(v2, sms_template, email_template):
    stranger = Service.objects.create(name="Stranger")
    theirs = sms_sender_add(service=stranger, sms_sender="THEIRS")
    their_reply_to = email_reply_to_add(service=stranger, email_address="a@stranger.example")
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification(
            "07700900123",
            str(sms_template.id),
            {"first name": "A", "code": "1"},
            sms_sender_id=str(theirs.id),
        )
    assert error_of(raised) == (
        400,
        [
            {
                "error": "BadRequestError",
                "message": f"sms_sender_id {theirs.id} does not exist in database for service "
                f"id {v2.service.id}",
            }
        ],
    )
    with pytest.raises(HTTPError) as raised:
        v2.client.send_email_notification(
            "a@example.com",
            str(email_template.id),
            {"month": "May", "name": "A", "amount": "1"},
            email_reply_to_id=str(their_reply_to.id),
        )
    assert error_of(raised)[1][0]["message"].startswith(f"email_reply_to_id {their_reply_to.id}")
    assert not Notification.objects.exists()


def test_a_missing_placeholder_is_named_and_nothing_is_written(v2, sms_template, email_template):
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification("07700900123", str(sms_template.id), {"First Name": "A"})
    assert error_of(raised) == (
        400,
        [{"error": "BadRequestError", "message": "Missing personalisation: code"}],
    )
    with pytest.raises(HTTPError) as raised:
        v2.client.send_email_notification("a@example.com", str(email_template.id), {"name": "A"})
    assert error_of(raised)[1] == [
        {"error": "BadRequestError", "message": "Missing personalisation: month, amount"}
    ]
    assert not Notification.objects.exists()
    assert not DailyStatistics.objects.exists()


def test_another_services_template_is_not_found(v2):
    stranger = Service.objects.create(name="Stranger")
    theirs = template_create(service=stranger, template_type="sms", name="T", body="Hi")
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification("07700900123", str(theirs.id))
    assert error_of(raised) == (
        400,
        [{"error": "BadRequestError", "message": "Template not found"}],
    )
    with pytest.raises(HTTPError) as raised:
        v2.client.get_template(str(theirs.id))
    assert error_of(raised) == (404, [{"error": "NoResultFound", "message": "No result found"}])
    with pytest.raises(HTTPError) as raised:
        v2.client.post_template_preview(str(theirs.id), {})
    assert error_of(raised)[0] == 400
    assert not Notification.objects.exists()


def test_a_template_of_the_other_type_is_refused(v2, email_template):
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification("07700900123", str(email_template.id))
    assert error_of(raised) == (
        400,
        [
            {
                "error": "BadRequestError",
                "message": "email template is not suitable for sms notification",
            }
        ],
    )


def test_bad_fields_are_validation_errors_naming_each(v2, sms_template):
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification("not a number", "not-a-uuid", reference="r")
    status, errors = error_of(raised)
    assert status == 400
    assert {e["error"] for e in errors} == {"ValidationError"}
    messages = sorted(e["message"] for e in errors)
    assert messages[0].startswith("phone_number ")
    assert messages[1] == "template_id is not a valid UUID"


def test_letters_and_document_uploads_are_not_offered(v2, email_template, tmp_path):
    attempts = {
        "Letters": lambda: v2.client.send_letter_notification(
            str(email_template.id), {"address_line_1": "A", "address_line_2": "B", "postcode": "C"}
        ),
        "Precompiled letters": lambda: v2.client.send_precompiled_letter_notification(
            "ref", (tmp_path / "letter.pdf").open("w+b")
        ),
        "Letters (and their PDFs)": lambda: v2.client.get_pdf_for_letter(str(uuid.uuid4())),
    }
    for what, attempt in attempts.items():
        with pytest.raises(HTTPError) as raised:
            attempt()
        assert error_of(raised) == (
            400,
            [
                {
                    "error": "BadRequestError",
                    "message": f"{what} are not supported: this service sends text messages "
                    "and emails",
                }
            ],
        )

    pdf = tmp_path / "bill.pdf"
    pdf.write_bytes(b"%PDF-1.4 a bill")
    with pytest.raises(HTTPError) as raised:
        v2.client.send_email_notification(
            "a@example.com",
            str(email_template.id),
            {"month": "May", "name": "A", "amount": prepare_upload(pdf.open("rb"))},
        )
    assert error_of(raised)[1][0]["message"].startswith(
        "Document uploads (personalisation 'amount')"
    )
    with pytest.raises(HTTPError) as raised:
        v2.client.get_all_notifications(template_type="letter")
    assert error_of(raised)[1][0]["message"].startswith("Letters are not supported")
    assert not Notification.objects.exists()


def test_notifications_are_listed_newest_first_and_filtered(v2, sms_template, email_template):
    text = v2.client.send_sms_notification(
        "07700900123", str(sms_template.id), {"first name": "A", "code": "1"}, reference="r1"
    )
    email = v2.client.send_email_notification(
        "a@example.com", str(email_template.id), {"month": "May", "name": "A", "amount": "1"}
    )

    listed = v2.client.get_all_notifications()
    schemas.assert_matches(listed, schemas.GET_NOTIFICATIONS)
    assert [n["id"] for n in listed["notifications"]] == [email["id"], text["id"]]
    assert listed["links"]["current"] == f"{v2.url}/v2/notifications"
    assert listed["links"]["next"] == f"{v2.url}/v2/notifications?older_than={text['id']}"
    only_texts = v2.client.get_all_notifications(template_type="sms")
    assert [n["id"] for n in only_texts["notifications"]] == [text["id"]]
    by_reference = v2.client.get_all_notifications(reference="r1", status="created")
    assert [n["id"] for n in by_reference["notifications"]] == [text["id"]]
    assert v2.client.get_all_notifications(status="delivered")["notifications"] == []
    with pytest.raises(HTTPError) as raised:
        v2.client.get_all_notifications(status="lost")
    assert error_of(raised)[1][0]["error"] == "ValidationError"


def test_pages_of_250_follow_older_than_to_the_end(v2, sms_template):
    notifications = [
        notification_create(
            service=v2.service,
            notification_type="sms",
            recipient="447700900123",
            content=f"text {i}",
            template=sms_template,
            template_version=1,
        )
        for i in range(260)
    ]
    newest_first = sorted(notifications, key=lambda n: (n.created_at, n.id), reverse=True)
    wanted = [str(n.id) for n in newest_first]

    first = v2.client.get_all_notifications()
    schemas.assert_matches(first, schemas.GET_NOTIFICATIONS)
    assert [n["id"] for n in first["notifications"]] == wanted[:250]
    assert first["links"]["next"].endswith(f"older_than={wanted[249]}")
    second = v2.client.get_all_notifications(older_than=wanted[249])
    assert [n["id"] for n in second["notifications"]] == wanted[250:]
    assert v2.client.get_all_notifications(older_than=wanted[-1])["notifications"] == []
    # The official iterator follows `next` until an empty page.
    assert [n["id"] for n in v2.client.get_all_notifications_iterator()] == wanted
    assert v2.client.get_all_notifications(older_than=str(uuid.uuid4()))["notifications"] == []


def test_templates_and_their_versions(v2, sms_template, email_template):
    template_update(
        template=sms_template, body="Hi ((first name)), code ((code))", changed_by="ops"
    )
    template_update(template=sms_template, body="Hi ((first name)), code ((code))")  # no change

    current = v2.client.get_template(str(sms_template.id))
    schemas.assert_matches(current, schemas.TEMPLATE)
    assert (current["version"], current["body"]) == (2, "Hi ((first name)), code ((code))")
    assert current["subject"] is None and current["updated_at"] is not None
    first = v2.client.get_template_version(str(sms_template.id), 1)
    schemas.assert_matches(first, schemas.TEMPLATE)
    assert (first["version"], first["body"]) == (1, sms_template.body)
    assert first["updated_at"] is None
    with pytest.raises(HTTPError) as raised:
        v2.client.get_template_version(str(sms_template.id), 3)
    assert error_of(raised)[0] == 404

    everything = v2.client.get_all_templates()
    schemas.assert_matches(everything, schemas.TEMPLATES)
    assert {t["id"] for t in everything["templates"]} == {
        str(sms_template.id),
        str(email_template.id),
    }
    emails = v2.client.get_all_templates(template_type="email")
    assert [(t["id"], t["subject"]) for t in emails["templates"]] == [
        (str(email_template.id), "Your bill for ((month))")
    ]

    sent = v2.client.send_sms_notification(
        "07700900123", str(sms_template.id), {"first name": "A", "code": "9"}
    )
    assert sent["content"]["body"] == "Hi A, code 9"
    assert sent["template"]["version"] == 2


def test_a_preview_fills_the_template_in(v2, sms_template, email_template):
    text = v2.client.post_template_preview(str(sms_template.id), {"first name": "A", "code": 7})
    schemas.assert_matches(text, schemas.PREVIEW)
    assert text == {
        "id": str(sms_template.id),
        "type": "sms",
        "version": 1,
        "body": "Hello A, your code is 7.",
        "subject": None,
        "html": None,
    }
    email = v2.client.post_template_preview(
        str(email_template.id), {"month": "May", "name": "<b>A</b>", "amount": "£5"}
    )
    schemas.assert_matches(email, schemas.PREVIEW)
    assert email["subject"] == "Your bill for May"
    assert email["html"] == (
        "<p>Dear &lt;b&gt;A&lt;/b&gt;,</p><p>You owe £5.</p><p>The council</p>"
    )
    with pytest.raises(HTTPError) as raised:
        v2.client.post_template_preview(str(sms_template.id), {"code": 7})
    assert error_of(raised)[1] == [
        {"error": "BadRequestError", "message": "Missing personalisation: First Name"}
    ]
    assert not Notification.objects.exists()


def test_the_idempotency_key_header_works_on_v2_sends(v2, sms_template):
    def send(reference: str) -> requests.Response:
        token = authentication.create_jwt_token(v2.key[-36:], str(v2.service.id))
        return requests.post(
            f"{v2.url}/v2/notifications/sms",
            json={"phone_number": "07700900123", "template_id": str(sms_template.id),
                  "personalisation": {"first name": "A", "code": "1"}, "reference": reference},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "order-1"},
            timeout=10,
        )  # fmt: skip

    first, again, other = send("r"), send("r"), send("another")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert other.json()["errors"][0]["error"] == "IdempotencyError"
    assert Notification.objects.count() == 1


def test_a_text_counts_its_parts_and_over_six_is_refused(v2):
    template = template_create(service=v2.service, template_type="sms", name="Long",
                               body="((text))")  # fmt: skip
    answer = v2.client.send_sms_notification("07700900123", str(template.id), {"text": "a" * 161})
    assert Notification.objects.get(id=answer["id"]).fragment_count == 2
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification("07700900123", str(template.id), {"text": "a" * 919})
    assert error_of(raised)[1] == [
        {
            "error": "BadRequestError",
            "message": "Text messages cannot be longer than 6 parts (918 GSM characters or 402 "
            "others), this one is 7 parts",
        }
    ]
    assert Notification.objects.count() == 1


def mmg_text(v2, *, number: str, message: str, mmg_id: str, sender: str = "447700900123"):
    """A received text as MMG posts it, to the live server."""
    body = {
        "MSISDN": sender,
        "Number": number,
        "Message": quote_plus(message),
        "ID": mmg_id,
        "DateRecieved": quote_plus("2017-05-21 11:56:11"),
    }
    response = requests.post(f"{v2.url}/notifications/sms/receive/mmg", json=body, timeout=10)
    assert response.json() == {"status": "ok"}
    inbox_drain()  # what the inbox drain's worker does once the text is stored


def test_received_texts_are_listed_newest_first_for_their_service_only(v2):
    inbound_number_set(service=v2.service, number="447700900500")
    other = Service.objects.create(name="Someone else")
    inbound_number_set(service=other, number="40604")
    mmg_text(v2, number="447700900500", message="first", mmg_id="mmg-1")
    mmg_text(v2, number="40604", message="not ours", mmg_id="mmg-2")
    mmg_text(v2, number="07700900999", message="nobody's", mmg_id="mmg-3")
    mmg_text(v2, number="447700900500", message="second: 100% yes", mmg_id="mmg-4", sender="NOTIFY")

    answer = v2.client.get_received_texts()

    schemas.assert_matches(answer, schemas.RECEIVED_TEXTS)
    texts = answer["received_text_messages"]
    assert [t["content"] for t in texts] == ["second: 100% yes", "first"]
    newest = texts[0]
    assert newest["user_number"] == "NOTIFY"
    assert newest["notify_number"] == "07700900500"
    assert newest["service_id"] == str(v2.service.id)
    assert texts[1]["user_number"] == "447700900123"
    assert answer["links"]["current"] == f"{v2.url}/v2/received-text-messages"
    assert answer["links"]["next"] == (
        f"{v2.url}/v2/received-text-messages?older_than={texts[-1]['id']}"
    )
    assert v2.client.get_received_texts(older_than=texts[-1]["id"]) == {
        "received_text_messages": [],
        "links": {"current": f"{v2.url}/v2/received-text-messages?older_than={texts[-1]['id']}"},
    }


def test_received_texts_page_by_250_through_the_official_iterator(v2):
    base = timezone.now()
    ReceivedText.objects.bulk_create(
        ReceivedText(
            service=v2.service,
            provider="firetext",
            user_number="447700900123",
            notify_number="07700900500",
            content=f"text {n}",
            provider_date=base,
            created_at=base - timedelta(seconds=n),
        )
        for n in range(251)
    )

    first = v2.client.get_received_texts()
    every = list(v2.client.get_received_texts_iterator())

    assert len(first["received_text_messages"]) == 250
    assert [t["content"] for t in every] == [f"text {n}" for n in range(251)]


def test_received_texts_older_than_must_be_an_id(v2):
    with pytest.raises(HTTPError) as raised:
        v2.client.get_received_texts(older_than="yesterday")
    assert error_of(raised) == (
        400,
        [{"error": "ValidationError", "message": "older_than is not a valid UUID"}],
    )


def test_a_text_sent_to_the_services_own_number_comes_back_as_a_received_text(
    v2, sms_template, deliver_in_process, settings, monkeypatch
):
    """GOV.UK Notify's functional test `test_provider_inbound_sms`, against the fakes."""
    inbound_number_set(service=v2.service, number="07700900500")
    behaviour = Behaviour(receipt_delay=0.0, outcomes={"delivered": 100.0})
    with running_fake_providers(
        receipts_to=v2.url, behaviour=behaviour, inbound_numbers=("07700900500",)
    ) as fake:
        fake.configure_clients(settings, monkeypatch)
        for provider in ("firetext", "mmg"):
            ProviderDetails.objects.update(priority=0)
            ProviderDetails.objects.filter(name=provider).update(priority=100)
            unique = f"inbound test {provider} {uuid.uuid4()}"
            sent = v2.client.send_sms_notification(
                phone_number="07700900500",
                template_id=str(sms_template.id),
                personalisation={"first name": unique, "code": "1"},
            )

            shown = poll(
                lambda unique=unique: next(
                    (
                        t
                        for t in v2.client.get_received_texts()["received_text_messages"]
                        if unique in t["content"]
                    ),
                    None,
                ),
                what=f"the text back through {provider}",
            )
            assert shown["notify_number"] == "07700900500"
            assert shown["user_number"] == "NOTIFY"  # the sender it was sent from
            assert Notification.objects.get(id=sent["id"]).sent_by == provider
        # A text to a number the fakes do not host does not come back.
        v2.client.send_sms_notification(
            "07700900123", str(sms_template.id), {"first name": "A", "code": "1"}
        )
        received = {p["provider"]: p for p in fake.receipts() if p["status"] == "received-text"}
        assert set(received) == {"firetext", "mmg"}
        assert all(p["answer"] == 200 for p in received.values())
        assert ReceivedText.objects.count() == 2


def test_the_fakes_post_a_received_text_in_either_format_when_asked(v2, deliver_in_process):
    """The inbox drain runs in the server's thread once each text is stored (sync mode)."""
    inbound_number_set(service=v2.service, number="40604")
    with running_fake_providers(receipts_to=v2.url) as fake:
        for provider in ("firetext", "mmg"):
            fake.receive(
                provider=provider,
                source="+44 7700 900123",
                destination="40604",
                message=f"Hello & 100% from {provider}",
            )
        texts = poll(
            lambda: len(t := v2.client.get_received_texts()["received_text_messages"]) == 2 and t,
            what="both texts",
        )
        with pytest.raises(ValueError, match="provider"):
            fake.receive(provider="ses", source="a", destination="b", message="c")

    assert sorted(t["content"] for t in texts) == [
        "Hello & 100% from firetext",
        "Hello & 100% from mmg",
    ]
    assert {t["user_number"] for t in texts} == {"447700900123"}
