"""Requests of the /v2 API, checked as GOV.UK Notify checks them; errors in the section 4 shape
(`ValidationError`, "<field> <message>")."""

import string
import uuid
from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from sending.api.serializers import (
    EmailRequestSerializer,
    EmptyQueryValue,
    SmsRequestSerializer,
    StrictSerializer,
    TextField,
)
from sending.api_v2.errors import BadRequest, unsupported
from sending.models import NotificationStatus, NotificationType
from sending.text_rules import text_fault


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise serializers.ValidationError("is not a valid UUID") from None


class UuidField(TextField):
    def __init__(self, **kwargs):
        kwargs.setdefault("schema", {"format": "uuid"})
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return _uuid(super().to_internal_value(data))


_VALUE = {"oneOf": [{"type": "string"}, {"type": "number"}], "nullable": True}


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "array", "items": _VALUE}],
            "nullable": True,
        },
        "description": "a value for each placeholder: a string, a number or a list of them "
        "(a list becomes bullet points in an email)",
    }
)
class PersonalisationField(serializers.Field):
    """An object of values: strings, numbers or lists of them. A file (document upload) is not
    offered. A name or a value with a NUL or a lone surrogate is a BadRequestError naming the
    placeholder (contract section 11)."""

    default_error_messages = {"invalid": "should contain key value pairs"}

    def to_internal_value(self, data):
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail("invalid")
        errors = []
        for key, value in data.items():
            if isinstance(value, dict) and "file" in value:
                raise unsupported(f"Document uploads (personalisation {key!r})")
            if not _scalar(value) and not (
                isinstance(value, list) and all(_scalar(item) for item in value)
            ):
                errors.append(f"{key} must be a string, a number or a list of them")
        if errors:
            raise serializers.ValidationError(errors)
        refused = [fault for key, value in data.items() if (fault := _value_fault(key, value))]
        if refused:
            raise BadRequest(refused)
        return data

    def to_representation(self, value):
        return value


def _value_fault(key: str, value) -> str | None:
    """Why a placeholder's name or value (or an item of its list) can't be taken, naming the
    placeholder; None when it can."""
    for text in (key, *(value if isinstance(value, list) else [value])):
        fault = text_fault(text) if isinstance(text, str) else None
        if fault is not None:
            return f"personalisation {key} {fault}"
    return None


def _scalar(value) -> bool:
    return value is None or isinstance(value, str | int | float)


class TemplateTypeField(EmptyQueryValue, serializers.ChoiceField):
    """`sms` or `email`; `letter` is answered as not offered (BadRequestError) rather than as an
    unknown choice, and is left out of the schema's choices."""

    def __init__(self, **kwargs):
        super().__init__(choices=NotificationType.values, **kwargs)

    def to_internal_value(self, data):
        if data == "letter":
            raise unsupported("Letters")
        return super().to_internal_value(data)


class _V2Send(StrictSerializer):
    template_id = UuidField()
    personalisation = PersonalisationField(required=False)
    reference = TextField(required=False, allow_null=True, max_length=255, one_line=True)


class SmsV2RequestSerializer(_V2Send):
    # Checked and stated as the section 4 API's.
    phone_number = TextField(schema=SmsRequestSerializer._declared_fields["phone_number"].schema)
    sms_sender_id = UuidField(required=False, allow_null=True)

    validate_phone_number = SmsRequestSerializer.validate_phone_number


class EmailV2RequestSerializer(_V2Send):
    email_address = TextField(
        max_length=320, schema=EmailRequestSerializer._declared_fields["email_address"].schema
    )
    email_reply_to_id = UuidField(required=False, allow_null=True)
    one_click_unsubscribe_url = TextField(
        required=False, allow_null=True, max_length=2048, one_line=True, trim_whitespace=False
    )
    sanitise_content_for = serializers.ListField(child=TextField(), required=False, allow_null=True)

    validate_email_address = EmailRequestSerializer.validate_email_address

    def validate_one_click_unsubscribe_url(self, value):
        if value is not None and not _https_url(value):
            raise serializers.ValidationError("is not a valid https url")
        return value


# The characters a URI may hold (RFC 3986); anything else (whitespace, `<`, `>`, a letter outside
# ASCII) would not stand as it is inside the List-Unsubscribe header's `<…>`: `>,<mailto:…>` there
# adds an unsubscribe address of the sender's choosing.
_URI_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")


def _https_url(value: str) -> bool:
    """One https:// URL with a host, made only of URI characters: it goes out in the
    List-Unsubscribe header (control characters the field refuses)."""
    try:
        parts = urlsplit(value)
    except ValueError:  # an unclosed "[" of an IPv6 address
        return False
    uri_only = set(value) <= _URI_CHARACTERS
    return parts.scheme == "https" and bool(parts.hostname) and uri_only


class PreviewRequestSerializer(StrictSerializer):
    personalisation = PersonalisationField(allow_null=True)


class NotificationListQuerySerializer(StrictSerializer):
    template_type = TemplateTypeField(required=False)
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=NotificationStatus.values), required=False
    )
    reference = TextField(required=False, max_length=255, one_line=True)
    older_than = UuidField(required=False)
    include_jobs = TextField(required=False)  # the official client may send it; no jobs here


class TemplateListQuerySerializer(StrictSerializer):
    type = TemplateTypeField(required=False)
