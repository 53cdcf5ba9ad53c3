"""A /v2 text is sanitised as GOV.UK Notify's is (contract section 11): what the provider
receives, what is stored, counted and shown is the sanitised text; section 4 sends as given."""

import pytest
from notifications_python_client.errors import HTTPError
from rest_framework.test import APIClient

from sending.models import Notification
from sending.templates import template_create
from stats.models import DailyStatistics
from tests.api_v2 import schemas

pytestmark = pytest.mark.django_db(transaction=True)

# 160 characters with a curly apostrophe, an emoji and a zero-width space: 3 UCS-2 parts as
# written, 1 GSM part as Notify sends it.
NAME = "Ionuț O’Brien 👋\u200b"
SENT_NAME = "Ionut O'Brien ?"


@pytest.fixture
def template(v2):
    return template_create(
        service=v2.service,
        template_type="sms",
        name="Reminder",
        body="Dear ((name)), your bin day moves to Friday – see the council’s site. " + "a" * 83,
    )


def test_the_provider_receives_the_sanitised_text_and_it_is_counted_as_sent(v2, template, fake):
    answer = v2.client.send_sms_notification(
        phone_number="07700900123", template_id=str(template.id), personalisation={"name": NAME}
    )

    body = f"Dear {SENT_NAME}, your bin day moves to Friday - see the council's site. " + "a" * 83
    assert len(body) == 160
    schemas.assert_matches(answer, schemas.POST_SMS)
    assert answer["content"]["body"] == body
    [sent] = fake.requests("firetext")
    assert sent["fields"]["message"] == body
    row = Notification.objects.get(id=answer["id"])
    assert (row.content, row.fragment_count) == (body, 1)
    assert DailyStatistics.objects.get(service=v2.service).sms_fragments == 1
    assert v2.client.get_notification_by_id(answer["id"])["body"] == body


def test_a_welsh_text_keeps_its_letters_and_is_counted_as_ucs2(v2, fake):
    template = template_create(
        service=v2.service, template_type="sms", name="Croeso", body="Croeso i’r ŵyl, ((name))!"
    )
    answer = v2.client.send_sms_notification(
        "07700900123", str(template.id), {"name": "Siân " + "a" * 60}
    )

    body = "Croeso i'r ŵyl, Siân " + "a" * 60 + "!"
    [sent] = fake.requests("firetext")
    assert sent["fields"]["message"] == answer["content"]["body"] == body
    assert Notification.objects.get(id=answer["id"]).fragment_count == 2  # 82 UCS-2 units


def test_a_text_empty_once_sanitised_is_refused(v2):
    template = template_create(service=v2.service, template_type="sms", name="T", body="((x))")
    with pytest.raises(HTTPError) as raised:
        v2.client.send_sms_notification("07700900123", str(template.id), {"x": "\u200b\u2060"})
    assert raised.value.response.json()["errors"] == [
        {"error": "BadRequestError", "message": "Message is empty or just whitespace"}
    ]
    assert not Notification.objects.exists()


def test_the_preview_of_a_text_is_the_sanitised_text(v2, template):
    preview = v2.client.post_template_preview(str(template.id), {"name": "Łucja “Lu” 🙂"})
    assert preview["body"].startswith('Dear Lucja "Lu" ?, your bin day moves to Friday - see')


def test_section_4_sends_content_as_given(v2, fake):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {v2.key}")
    answer = client.post(
        "/notifications/sms",
        {"phone_number": "07700900123", "content": "Zoë’s 👋"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["content"] == "Zoë’s 👋"
    assert answer.json()["fragment_count"] == 1
    [sent] = fake.requests("firetext")
    assert sent["fields"]["message"] == "Zoë’s 👋"
