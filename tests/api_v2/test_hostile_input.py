"""Hostile input to the /v2 API (issue 20): every bad request is a 400 in the contract's error
shape naming what is wrong, never a 500 (PostgreSQL refuses a NUL, no driver can encode a lone
surrogate), and nothing is written. In process, on both databases; the official client's own
tests run against a real server (test_official_client.py)."""

import json

import pytest
from notifications_python_client.authentication import create_jwt_token
from rest_framework.test import APIClient

from sending.models import ApiKey, IdempotencyKey, Notification, Service, Template
from sending.templates import template_create

pytestmark = pytest.mark.django_db


class V2Client:
    """Posts raw JSON (so a lone surrogate goes as `\\ud800`) with a fresh token each time, and
    answers with what the server answered, 500s included."""

    def __init__(self, service: Service, key: str):
        self.service, self.key = service, key
        self.client = APIClient(raise_request_exception=False)

    def _token(self) -> dict:
        token = create_jwt_token(self.key[-36:], str(self.service.id))
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def post(self, path: str, body: dict, **headers):
        data = json.dumps(body)
        return self.client.generic(
            "POST", path, data, content_type="application/json", **self._token(), **headers
        )

    def get(self, path: str, query: dict | None = None):
        return self.client.get(path, query, **self._token())


@pytest.fixture
def v2(service) -> V2Client:
    _, key = ApiKey.issue(service, name="key")
    return V2Client(service, key)


@pytest.fixture
def sms_template(service) -> Template:
    return template_create(service=service, template_type="sms", name="T", body="Hi ((name))")


@pytest.fixture
def email_template(service) -> Template:
    return template_create(
        service=service,
        template_type="email",
        name="Bill",
        subject="Your bill for ((month))",
        body="Dear ((name)),\n\n((items))",
    )


def errors_of(response, status: int) -> list[dict]:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["status_code"] == status
    return body["errors"]


def bad_request(message: str) -> list[dict]:
    return [{"error": "BadRequestError", "message": message}]


EMAIL_VALUES = {"name": "Ada", "month": "May", "items": "a"}
UNSTORABLE = [
    ("\x00", "must not contain a NUL character"),
    ("\ud800", "must not contain a lone surrogate (U+D800)"),
]


def email(personalisation: dict, template: Template, **fields) -> dict:
    return {
        "email_address": "someone@example.com",
        "template_id": str(template.id),
        "personalisation": personalisation,
        **fields,
    }


@pytest.mark.parametrize(("bad", "message"), UNSTORABLE)
@pytest.mark.parametrize(
    ("personalisation", "named"),
    [
        ({"name": "Ada{bad}"}, "name"),  # the body
        ({"month": "May{bad}"}, "month"),  # the subject
        ({"items": ["a", "b{bad}"]}, "items"),  # an item of a list
        ({"unused": "x{bad}"}, "unused"),  # a value the template does not use
        ({"na{bad}me": "x"}, "na{shown}me"),  # a name
    ],
)
def test_a_nul_or_lone_surrogate_in_personalisation_is_a_400_naming_the_placeholder(
    v2, email_template, personalisation, named, bad, message
):
    given = {
        key.format(bad=bad): [v.format(bad=bad) for v in value]
        if isinstance(value, list)
        else value.format(bad=bad)
        for key, value in personalisation.items()
    }
    shown = named.format(shown="\ufffd" if bad != "\x00" else bad)
    expected = bad_request(f"personalisation {shown} {message}")

    sent = v2.post("/v2/notifications/email", email({**EMAIL_VALUES, **given}, email_template))
    preview = v2.post(
        f"/v2/template/{email_template.id}/preview", {"personalisation": {**EMAIL_VALUES, **given}}
    )

    assert errors_of(sent, 400) == expected
    assert errors_of(preview, 400) == expected
    assert not Notification.objects.exists()


@pytest.mark.parametrize(("bad", "message"), UNSTORABLE)
def test_a_nul_or_lone_surrogate_in_a_text_personalisation_is_a_400(v2, sms_template, bad, message):
    body = {
        "phone_number": "07700900123",
        "template_id": str(sms_template.id),
        "personalisation": {"name": f"Ada{bad}"},
    }
    response = v2.post("/v2/notifications/sms", body)
    assert errors_of(response, 400) == bad_request(f"personalisation name {message}")
    assert not Notification.objects.exists()


@pytest.mark.parametrize(("bad", "message"), UNSTORABLE)
def test_a_refused_v2_request_does_not_take_its_idempotency_key(v2, email_template, bad, message):
    """It answered 500 again and again; now 400 each time, and the key stays free for the
    corrected request (contract section 4)."""
    key = {"HTTP_IDEMPOTENCY_KEY": "bill-42"}
    refused = email({**EMAIL_VALUES, "name": f"Ada{bad}"}, email_template)
    for _ in range(2):
        response = v2.post("/v2/notifications/email", refused, **key)
        assert errors_of(response, 400) == bad_request(f"personalisation name {message}")
    assert not IdempotencyKey.objects.exists()

    accepted = v2.post("/v2/notifications/email", email(EMAIL_VALUES, email_template), **key)
    assert accepted.status_code == 201
    replayed = v2.post("/v2/notifications/email", email(EMAIL_VALUES, email_template), **key)
    assert replayed.content == accepted.content and replayed["Idempotent-Replayed"] == "true"
    assert Notification.objects.count() == 1


def test_a_line_break_a_value_brings_into_the_subject_becomes_a_space(v2, email_template):
    """As GOV.UK Notify does (notifications-utils' `normalise_whitespace`): the subject is one
    header line, and the value's line break is kept in the body."""
    values = {**EMAIL_VALUES, "month": "May\r\nBcc: all@example.com", "name": "Ada\nLovelace"}
    response = v2.post("/v2/notifications/email", email(values, email_template))

    assert response.status_code == 201
    content = response.json()["content"]
    assert content["subject"] == "Your bill for May Bcc: all@example.com"
    assert content["body"].startswith("Dear Ada\nLovelace,")
    assert Notification.objects.get().subject == "Your bill for May Bcc: all@example.com"


@pytest.mark.parametrize(("bad", "code"), [("\x07", "0007"), ("\x7f", "007F"), ("\x9b", "009B")])
def test_another_control_character_a_value_brings_into_the_subject_is_a_400(
    v2, email_template, bad, code
):
    values = {**EMAIL_VALUES, "month": f"May{bad}"}
    response = v2.post("/v2/notifications/email", email(values, email_template))

    assert errors_of(response, 400) == bad_request(
        "personalisation month (in the subject) must not contain a line break or other control "
        f"character (U+{code})"
    )
    assert not Notification.objects.exists()


def test_a_control_character_in_the_body_only_is_sent_as_given(v2, email_template):
    values = {**EMAIL_VALUES, "name": "Ada\x07"}
    response = v2.post("/v2/notifications/email", email(values, email_template))
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "https://council.example/u\r\nBcc: all@example.com",
            "one_click_unsubscribe_url must not contain a line break or other control character "
            "(U+000D)",
        ),
        ("https://council.example/u\tx", "one_click_unsubscribe_url must not contain a line "
         "break or other control character (U+0009)"),
        ("https://council.example/u x", "one_click_unsubscribe_url is not a valid https url"),
        ("https://council.example/u\u00a0", "one_click_unsubscribe_url is not a valid https url"),
        (" https://council.example/u", "one_click_unsubscribe_url is not a valid https url"),
        ("https://", "one_click_unsubscribe_url is not a valid https url"),
        ("https:///path", "one_click_unsubscribe_url is not a valid https url"),
        ("https://[::1/u", "one_click_unsubscribe_url is not a valid https url"),
        ("http://council.example/u", "one_click_unsubscribe_url is not a valid https url"),
        # `<…>` in the header: a second, mailto: target of the sender's choosing
        ("https://council.example/u>,<mailto:x@attacker.example",
         "one_click_unsubscribe_url is not a valid https url"),
        ("https://council.example/u\u202e", "one_click_unsubscribe_url is not a valid https url"),
        ('https://council.example/"u"', "one_click_unsubscribe_url is not a valid https url"),
    ],
)  # fmt: skip
def test_a_bad_one_click_unsubscribe_url_is_a_400(v2, email_template, url, message):
    body = email(EMAIL_VALUES, email_template, one_click_unsubscribe_url=url)
    response = v2.post("/v2/notifications/email", body)

    assert errors_of(response, 400) == [{"error": "ValidationError", "message": message}]
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "url",
    ["https://council.example/unsubscribe?u=1&t=a%2Fb#x", "https://[2001:db8::1]:8443/u;p=1",
     "https://council.example/~a/(b)/c!*'$+,="],
)  # fmt: skip
def test_a_one_click_unsubscribe_url_of_uri_characters_goes_out_as_given(v2, email_template, url):
    body = email(EMAIL_VALUES, email_template, one_click_unsubscribe_url=url)
    response = v2.post("/v2/notifications/email", body)
    assert response.status_code == 201
    assert response.json()["content"]["one_click_unsubscribe_url"] == url


@pytest.mark.parametrize("reference", ["line one\nline two", "a\r\nb", "a\x00b"])
def test_a_control_character_in_the_reference_is_a_400(v2, email_template, reference):
    response = v2.post("/v2/notifications/email", email(EMAIL_VALUES, email_template,
                                                        reference=reference))  # fmt: skip
    [error] = errors_of(response, 400)
    assert error["error"] == "ValidationError"
    assert error["message"].startswith("reference must not contain a ")
    assert not Notification.objects.exists()


def test_older_than_must_be_an_id_and_an_unknown_one_lists_nothing(v2, sms_template):
    """As GOV.UK Notify: a non-UUID `older_than` is a 400, a UUID it has no notification for
    an empty page (so a client following `next` stops)."""
    v2.post(
        "/v2/notifications/sms",
        {"phone_number": "07700900123", "template_id": str(sms_template.id),
         "personalisation": {"name": "A"}},
    )  # fmt: skip
    assert errors_of(v2.get("/v2/notifications", {"older_than": "junk"}), 400) == [
        {"error": "ValidationError", "message": "older_than is not a valid UUID"}
    ]
    unknown = v2.get("/v2/notifications", {"older_than": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 200 and unknown.json()["notifications"] == []
