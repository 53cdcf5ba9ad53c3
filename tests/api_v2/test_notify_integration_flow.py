"""The journey GOV.UK Notify's official Python client checks in its own integration run, against
a live server of ours, with the environment that run expects made by fixtures.

That run sends with a test key (`API_KEY`) and a team key (`API_SENDING_KEY`): texts with and
without a chosen SMS sender, emails with and without a chosen reply-to (with a one-click
unsubscribe link and sanitised personalisation), then reads each one back, lists them, reads the
templates (current, by version, previewed, all of them and by type) and the received texts (with
`INBOUND_SMS_QUERY_KEY`). Its letter steps are answered as not offered here. On top of what that
run checks, this one checks what a service relies on those keys for: nothing sent with the test
key reaches a provider yet each ends `delivered`; the team key's text is really sent, from the
chosen sender; each key lists only its own notifications."""

import uuid
from dataclasses import dataclass

import pytest
from notifications_python_client import NotificationsAPIClient
from notifications_python_client.errors import HTTPError

from receipts.inbound_numbers import inbound_number_set
from receipts.models import ReceivedText
from sending.guest_list import guest_list_add
from sending.models import ApiKey, KeyType, Notification
from sending.senders import email_reply_to_add, sms_sender_add
from sending.templates import template_create
from tests.api_v2 import schemas
from tests.api_v2.conftest import poll
from tests.api_v2.test_official_client import error_of

pytestmark = pytest.mark.django_db(transaction=True)

FUNCTIONAL_TEST_NUMBER = "07700900123"
FUNCTIONAL_TEST_EMAIL = "functional-tests@council.example"
INBOUND_NUMBER = "07700900500"
UNSUBSCRIBE_URL = "https://council.example/unsubscribe"


@dataclass
class NotifyEnvironment:
    """What the official integration run reads from its environment, by the same names."""

    notify_api_url: str
    api_key: str  # a test key
    api_sending_key: str  # a team key
    inbound_sms_query_key: str
    functional_test_number: str
    functional_test_email: str
    sms_template_id: str
    email_template_id: str
    sms_sender_id: str
    email_reply_to_id: str

    def client(self, key: str) -> NotificationsAPIClient:
        return NotificationsAPIClient(base_url=self.notify_api_url, api_key=key)


def _key(service, key_type: str, name: str) -> str:
    return ApiKey.issue(service, name=name, key_type=key_type)[1]


@pytest.fixture
def received_text(v2, fake) -> ReceivedText:
    """Someone has texted the service's inbound number, through the fake Firetext."""
    inbound_number_set(service=v2.service, number=INBOUND_NUMBER)
    fake.receive(
        provider="firetext",
        source=FUNCTIONAL_TEST_NUMBER,
        destination=INBOUND_NUMBER,
        message="Yes, please call me back",
    )
    return poll(
        lambda: ReceivedText.objects.filter(service=v2.service).first(),
        what="the received text stored",
    )


@pytest.fixture
def notify_env(v2, fake, received_text) -> NotifyEnvironment:
    """A service set up as GOV.UK Notify's functional-test service is: a `((name))` text and
    email template, a default and a second SMS sender, a reply-to, the functional-test number
    and address on its guest list, a test key, a team key and a key to read received texts."""
    service = v2.service
    guest_list_add(service=service, recipient=FUNCTIONAL_TEST_NUMBER)
    guest_list_add(service=service, recipient=FUNCTIONAL_TEST_EMAIL)
    sms_sender_add(service=service, sms_sender="COUNCIL", is_default=True)
    chosen_sender = sms_sender_add(service=service, sms_sender="TAXOFFICE")
    reply_to = email_reply_to_add(service=service, email_address="tax@council.example")
    sms = template_create(
        service=service,
        template_type="sms",
        name="Functional test text",
        body="Hello ((name)), this is a functional test.",
    )
    email = template_create(
        service=service,
        template_type="email",
        name="Functional test email",
        subject="Functional test",
        body="Hello ((name)),\n\nThis is a functional test.",
    )
    return NotifyEnvironment(
        notify_api_url=v2.url,
        api_key=_key(service, KeyType.TEST, "functional tests test key"),
        api_sending_key=_key(service, KeyType.TEAM, "functional tests team key"),
        inbound_sms_query_key=_key(service, KeyType.NORMAL, "received texts key"),
        functional_test_number=FUNCTIONAL_TEST_NUMBER,
        functional_test_email=FUNCTIONAL_TEST_EMAIL,
        sms_template_id=str(sms.id),
        email_template_id=str(email.id),
        sms_sender_id=str(chosen_sender.id),
        email_reply_to_id=str(reply_to.id),
    )


def sms_send(env: NotifyEnvironment, client, sms_sender_id=None) -> dict:
    name = str(uuid.uuid4())
    answer = client.send_sms_notification(
        phone_number=env.functional_test_number,
        template_id=env.sms_template_id,
        personalisation={"name": name},
        sms_sender_id=sms_sender_id,
    )
    schemas.assert_matches(answer, schemas.POST_SMS)
    assert answer["content"]["body"] == f"Hello {name}, this is a functional test."
    assert answer["template"]["id"] == env.sms_template_id
    return answer


def email_send(env: NotifyEnvironment, client, email_reply_to_id=None) -> dict:
    name = str(uuid.uuid4())
    answer = client.send_email_notification(
        email_address=env.functional_test_email,
        template_id=env.email_template_id,
        personalisation={"name": name},
        one_click_unsubscribe_url=UNSUBSCRIBE_URL,
        email_reply_to_id=email_reply_to_id,
        sanitise_content_for=["name"],
    )
    schemas.assert_matches(answer, schemas.POST_EMAIL)
    sanitised = name.replace("-", "\\-")
    assert answer["content"]["body"] == f"Hello {sanitised},\n\nThis is a functional test."
    assert answer["content"]["subject"] == "Functional test"
    assert answer["content"]["one_click_unsubscribe_url"] == UNSUBSCRIBE_URL
    assert answer["sanitised_content"] == {"name": {"unsanitised": name, "sanitised": sanitised}}
    return answer


def notification_read(client, sent: dict, notification_type: str) -> dict:
    shown = client.get_notification_by_id(sent["id"])
    schemas.assert_matches(shown, schemas.GET_NOTIFICATION)
    assert (shown["id"], shown["type"], shown["body"]) == (
        sent["id"],
        notification_type,
        sent["content"]["body"],
    )
    assert shown["subject"] == sent["content"].get("subject")  # None for a text
    return shown


def template_read(client, template_id: str, *, version: int | None = None) -> dict:
    if version is None:
        shown = client.get_template(template_id)
    else:
        shown = client.get_template_version(template_id, version)
        assert shown["version"] == version
    schemas.assert_matches(shown, schemas.TEMPLATE)
    assert shown["id"] == template_id
    if shown["type"] == "sms":
        assert shown["subject"] is None
    return shown


def template_preview(client, template_id: str) -> dict:
    name = str(uuid.uuid4())
    shown = client.post_template_preview(template_id, {"name": name})
    schemas.assert_matches(shown, schemas.PREVIEW)
    assert shown["id"] == template_id
    assert name in shown["body"]
    if shown["type"] == "sms":
        assert shown["subject"] is None
    return shown


def letters_refused(client, tmp_path, some_notification_id: str) -> None:
    """Each letter step of the official run is a 400 BadRequestError naming letters, and makes
    nothing."""
    pdf = tmp_path / "one-page.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    address = {
        "address_line_1": "A Person",
        "address_line_2": "1 High Street",
        "postcode": "SW1 1AA",
    }
    steps = {
        "letter": lambda: client.send_letter_notification(str(uuid.uuid4()), address),
        "precompiled letter": lambda: client.send_precompiled_letter_notification(
            "ref", pdf.open("rb")
        ),
        "precompiled first-class letter": lambda: client.send_precompiled_letter_notification(
            "ref", pdf.open("rb"), postage="first"
        ),
        "letter's PDF": lambda: client.get_pdf_for_letter(some_notification_id),
        "letter templates": lambda: client.get_all_templates("letter"),
    }
    before = Notification.objects.count()
    for step, attempt in steps.items():
        with pytest.raises(HTTPError) as raised:
            attempt()
        status, [error] = error_of(raised)
        assert (status, error["error"]) == (400, "BadRequestError"), step
        assert "letters" in error["message"].lower(), step
    assert Notification.objects.count() == before


def status_of(client, notification_id: str, wanted: str) -> bool:
    return client.get_notification_by_id(notification_id)["status"] == wanted


def test_the_official_integration_run_with_a_test_key_and_a_team_key(
    notify_env, fake, received_text, tmp_path
):
    env = notify_env
    client = env.client(env.api_key)
    client_using_team_key = env.client(env.api_sending_key)

    sms = sms_send(env, client)
    sms_with_sender = sms_send(env, client_using_team_key, env.sms_sender_id)
    email = email_send(env, client)
    email_with_reply_to = email_send(env, client, env.email_reply_to_id)
    assert sms["content"]["from_number"] == "COUNCIL"
    assert sms_with_sender["content"]["from_number"] == "TAXOFFICE"
    letters_refused(client, tmp_path, sms["id"])

    # Every one is read back with the test key, the team key's text included.
    for sent, notification_type in [
        (sms, "sms"),
        (sms_with_sender, "sms"),
        (email, "email"),
        (email_with_reply_to, "email"),
    ]:
        notification_read(client, sent, notification_type)
    reply_tos = dict(
        Notification.objects.filter(notification_type="email").values_list("id", "sender")
    )
    assert reply_tos[uuid.UUID(email_with_reply_to["id"])] == "tax@council.example"

    listed = client.get_all_notifications()
    schemas.assert_matches(listed, schemas.GET_NOTIFICATIONS)

    for template_id in (env.sms_template_id, env.email_template_id):
        template_read(client, template_id)
        template_read(client, template_id, version=1)
        template_preview(client, template_id)
    everything = client.get_all_templates()
    schemas.assert_matches(everything, schemas.TEMPLATES)
    assert {t["id"] for t in everything["templates"]} == {
        env.sms_template_id,
        env.email_template_id,
    }
    for template_type, template_id in (
        ("email", env.email_template_id),
        ("sms", env.sms_template_id),
    ):
        only = client.get_all_templates(template_type)
        schemas.assert_matches(only, schemas.TEMPLATES)
        assert [t["id"] for t in only["templates"]] == [template_id]

    received = env.client(env.inbound_sms_query_key).get_received_texts()
    schemas.assert_matches(received, schemas.RECEIVED_TEXTS)
    [text] = received["received_text_messages"]
    assert (text["id"], text["content"]) == (str(received_text.id), "Yes, please call me back")
    assert (text["notify_number"], text["user_number"]) == (INBOUND_NUMBER, "447700900123")

    # What a service relies on those keys for.
    test_key_ids = {sms["id"], email["id"], email_with_reply_to["id"]}
    for notification_id in (*test_key_ids, sms_with_sender["id"]):
        poll(
            lambda n=notification_id: status_of(client, n, "delivered"),
            what=f"{notification_id} delivered",
        )
    texts_sent = fake.requests("firetext")
    # The team key's text, and only it: the test key's text reached no provider.
    assert [r["reference"] for r in texts_sent] == [sms_with_sender["id"]]
    [sent] = texts_sent
    assert (sent["fields"]["from"], sent["fields"]["to"]) == ("TAXOFFICE", "447700900123")
    assert sent["fields"]["message"] == sms_with_sender["content"]["body"]
    assert fake.requests("mmg") == []
    assert fake.requests("ses") == []  # neither test-key email reached SES
    assert {n["id"] for n in listed["notifications"]} == test_key_ids
    team_listed = client_using_team_key.get_all_notifications()["notifications"]
    assert [n["id"] for n in team_listed] == [sms_with_sender["id"]]
    assert env.client(env.inbound_sms_query_key).get_all_notifications()["notifications"] == []
