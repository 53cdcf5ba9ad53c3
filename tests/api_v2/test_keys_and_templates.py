"""Keys kept encrypted and rotated; templates versioned; the commands that make them."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from sending.key_encryption import secret_decrypt
from sending.models import ApiKey, EmailReplyTo, Service, SmsSender, Template, TemplateVersion
from sending.templates import template_create, template_render, template_update

pytestmark = pytest.mark.django_db


def last_line(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_create_api_key_prints_a_notify_style_key_that_works_on_section_4():
    key = last_line("create_api_key", "Council tax", "--name", "Live key")
    service = Service.objects.get(name="Council tax")
    assert key.startswith(f"live_key-{service.id}-") and len(key) == len("live_key-") + 73
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/notifications").status_code == 200


def test_the_secret_is_stored_encrypted_never_in_plain_text():
    key = last_line("create_api_key", "Council tax")
    secret = key[-36:]
    row = ApiKey.objects.get()
    assert secret_decrypt(row.secret_encrypted) == secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM sending_apikey")
        stored = " ".join(map(str, cursor.fetchall()))
    assert secret not in stored and key not in stored


def test_rotating_the_encryption_key_keeps_every_secret(settings):
    key = last_line("create_api_key", "Council tax")
    old = settings.API_KEY_ENCRYPTION_KEYS[0]
    new = Fernet.generate_key().decode()
    settings.API_KEY_ENCRYPTION_KEYS = [new, old]
    assert "re-encrypted 1 of 1 secrets" in last_line("rotate_api_key_encryption")
    settings.API_KEY_ENCRYPTION_KEYS = [new]  # the old key dropped
    assert secret_decrypt(ApiKey.objects.get().secret_encrypted) == key[-36:]


def test_rotation_refuses_when_no_key_decrypts_a_secret(settings):
    call_command("create_api_key", "Council tax", stdout=StringIO())
    settings.API_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="can't be decrypted by any key"):
        call_command("rotate_api_key_encryption", stdout=StringIO())


def test_create_template_prints_the_id_last_and_makes_version_1():
    call_command("create_api_key", "Council tax", stdout=StringIO())
    template_id = last_line(
        "create_template",
        "Council tax",
        "--type",
        "email",
        "--name",
        "Bill",
        "--subject",
        "Bill for ((month))",
        "--body",
        "Pay ((amount))",
    )
    template = Template.objects.get(id=template_id)
    assert (template.template_type, template.version, template.subject) == (
        "email",
        1,
        "Bill for ((month))",
    )
    assert list(template.versions.values_list("version", "body")) == [(1, "Pay ((amount))")]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--type", "email", "--name", "N", "--body", "B"], "an email template needs a subject"),
        (["--type", "sms", "--name", "N", "--body", " "], "body must not be empty"),
        (["--type", "sms", "--name", "N", "--subject", "S", "--body", "B"], "has no subject"),
        (
            ["--type", "email", "--name", "N", "--subject", "Bill\r\nBcc: x", "--body", "B"],
            r"subject must not contain a line break or other control character \(U\+000D\)",
        ),
        (["--type", "sms", "--name", "N", "--body", "B\x00"], "body must not contain a NUL"),
        (["--type", "sms", "--name", "N\n", "--body", "B"], "name must not contain a line"),
    ],
)
def test_create_template_refuses_a_template_that_cant_be_sent(args, problem):
    Service.objects.create(name="Council tax")
    with pytest.raises(CommandError, match=problem):
        call_command("create_template", "Council tax", *args, stdout=StringIO())
    assert not Template.objects.exists()


def test_create_template_needs_a_known_service():
    with pytest.raises(CommandError, match="no service with the name or id 'Nobody'"):
        call_command("create_template", "Nobody", "--type", "sms", "--name", "N", "--body", "B")


def test_every_change_is_a_new_version_and_no_change_is_none(service):
    template = template_create(service=service, template_type="sms", name="N", body="v1 ((a))")
    template = template_update(template=template, body="v2 ((a))", changed_by="ops")
    template = template_update(template=template, body="v2 ((a))")
    template = template_update(template=template, name="renamed")
    assert template.version == 3
    versions = TemplateVersion.objects.filter(template=template).order_by("version")
    assert [(v.version, v.name, v.body, v.created_by) for v in versions] == [
        (1, "N", "v1 ((a))", ""),
        (2, "N", "v2 ((a))", "ops"),
        (3, "renamed", "v2 ((a))", ""),
    ]
    with pytest.raises(ValidationError):
        template_update(template=template, body="")
    assert Template.objects.get(id=template.id).version == 3


def test_placeholders_match_without_regard_to_case_or_spaces(service):
    template = template_create(
        service=service,
        template_type="sms",
        name="N",
        body="((First Name)) ((first name)) ((FIRSTNAME)) (( code ))",
    )
    rendered = template_render(template, {"firstname": "Ada", "Code": ["a", "b"], "extra": "x"})
    assert rendered.body == "Ada Ada Ada a, b"


def test_sms_senders_and_reply_to_have_one_default_and_print_their_ids():
    Service.objects.create(name="Council tax")
    first = last_line("add_sms_sender", "Council tax", "COUNCIL")
    second = last_line("add_sms_sender", "Council tax", "07700900123", "--default")
    assert SmsSender.objects.get(is_default=True).id.hex == second.replace("-", "")
    assert not SmsSender.objects.get(id=first).is_default
    reply_to = last_line("add_email_reply_to", "Council tax", "tax@council.example")
    assert EmailReplyTo.objects.get(id=reply_to).is_default  # the first one is the default
    with pytest.raises(CommandError):
        call_command("add_sms_sender", "Council tax", "MUCH TOO LONG NAME", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("add_email_reply_to", "Council tax", "not-an-address", stdout=StringIO())
