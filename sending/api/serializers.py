import functools
from datetime import UTC

from django.core.exceptions import ImproperlyConfigured
from django.core.validators import validate_email
from drf_spectacular.extensions import (
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from rest_framework import serializers
from rest_framework.utils import html

from sending.fragments import MAX_SMS_FRAGMENTS, sms_fragment_count, sms_too_long_message
from sending.models import Notification, NotificationStatus, NotificationType
from sending.phone_numbers import PHONE_NUMBER_PATTERN, InvalidPhoneNumber, normalise_phone_number
from sending.text_rules import text_fault

EMAIL_SUBJECT_LIMIT = 998  # the longest line RFC 5322 allows
EMAIL_CONTENT_LIMIT = 100_000

_MESSAGES = {
    "required": "is a required property",
    "blank": "Can't be empty",
    "null": "Can't be null",
}


def _not_blank(value: str) -> str:
    if not value.strip():
        raise serializers.ValidationError("Can't be empty")
    return value


# A value that is not blank once trimmed (Python's whitespace is spelled out: the schema's
# regex engines don't count U+001C-U+001F as space) and holds no NUL (sending.text_rules).
NOT_BLANK_PATTERN = r"^[^\x00]*[^\s\x1c-\x1f\x00][^\x00]*$"
# The same for a value kept to one line: no control character at all (sending.text_rules.CONTROL).
_CONTROL = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
ONE_LINE_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"


class EmptyQueryValue:
    """A field mixin: a query's `name=` is an empty value, refused unless the field allows
    blanks (as the schema's minLength or enum says); DRF takes it for a missing one when the
    field is optional."""

    def get_value(self, dictionary):
        if html.is_html_input(dictionary) and dictionary.get(self.field_name) == "":
            return ""
        return super().get_value(dictionary)


class TextField(EmptyQueryValue, serializers.CharField):
    """A CharField that takes only JSON strings (DRF's would turn 123 into "123"), whose length
    limit counts the value as sent (DRF's counts it trimmed), that refuses what
    `sending.text_rules` refuses (with `one_line`, control characters too), and whose OpenAPI
    schema states what it accepts: `minLength`, a pattern, and any `schema` keys given (a
    format, a bound the field's validation enforces in its own words)."""

    def __init__(self, *, schema: dict | None = None, one_line: bool = False, **kwargs):
        kwargs.setdefault("error_messages", {}).update(_MESSAGES)
        self.schema = schema or {}
        self.one_line = one_line
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(f"must be a string, not {type(data).__name__}")
        fault = text_fault(data, one_line=self.one_line)
        if fault is not None:
            raise serializers.ValidationError(fault)
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class TextFieldSchema(OpenApiSerializerFieldExtension):
    target_class = TextField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        if not field.allow_blank:
            pattern = ONE_LINE_PATTERN if field.one_line else NOT_BLANK_PATTERN
            schema.update(minLength=1, pattern=pattern)
        return schema | field.schema


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is an error rather than silently ignored."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        errors = {name: ["Additional properties are not allowed"] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as err:
            raise serializers.ValidationError({**err.detail, **errors}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value


# No text of more characters fits in six parts; fewer may not (UCS-2, extension characters).
SMS_CONTENT_MAX_CHARACTERS = 918


class StrictSerializerSchema(OpenApiSerializerExtension):
    """The schema says so too: no property but those listed."""

    target_class = StrictSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


class SmsRequestSerializer(StrictSerializer):
    phone_number = TextField(
        schema={
            "pattern": PHONE_NUMBER_PATTERN,
            "description": "a UK mobile in any common form, or + or 00 and 8-15 digits",
        }
    )
    content = TextField(
        trim_whitespace=False,
        schema={
            "maxLength": SMS_CONTENT_MAX_CHARACTERS,
            "description": "at most 6 parts: 918 GSM 03.38 characters (extension characters "
            "count twice) or 402 UTF-16 units of anything else",
        },
    )
    reference = TextField(required=False, allow_null=True, max_length=255, one_line=True)

    def validate_phone_number(self, value: str):
        try:
            return normalise_phone_number(value)
        except InvalidPhoneNumber as err:
            raise serializers.ValidationError(str(err)) from None

    def validate_content(self, value: str) -> str:
        fragments = sms_fragment_count(_not_blank(value))
        if fragments > MAX_SMS_FRAGMENTS:
            raise serializers.ValidationError(sms_too_long_message(fragments))
        return value

    def notification_fields(self, data: dict | None = None) -> dict:
        """The validated request (or `data`, one validated item) as `notification_create`
        arguments."""
        data = self.validated_data if data is None else data
        return {
            "notification_type": NotificationType.SMS,
            "recipient": data["phone_number"].digits,
            "international": data["phone_number"].international,
            "content": data["content"],
            "client_reference": data.get("reference"),
        }


class EmailRequestSerializer(StrictSerializer):
    email_address = TextField(max_length=320, schema={"format": "email"})
    subject = TextField(max_length=EMAIL_SUBJECT_LIMIT, one_line=True)
    content = TextField(max_length=EMAIL_CONTENT_LIMIT, trim_whitespace=False)
    reference = TextField(required=False, allow_null=True, max_length=255, one_line=True)

    def validate_email_address(self, value: str) -> str:
        try:
            validate_email(value)
        except Exception:  # Django's ValidationError; DRF would otherwise rename it
            raise serializers.ValidationError("Not a valid email address") from None
        return value

    def validate_content(self, value: str) -> str:
        return _not_blank(value)

    def notification_fields(self, data: dict | None = None) -> dict:
        data = self.validated_data if data is None else data
        return {
            "notification_type": NotificationType.EMAIL,
            "recipient": data["email_address"],
            "subject": data["subject"],
            "content": data["content"],
            "client_reference": data.get("reference"),
        }


BATCH_LIMIT = 1000


def batch_items_validate(data, item_serializer: type[StrictSerializer]) -> list[dict]:
    """A batch request, `{"notifications": [ … ]}` of 1 to BATCH_LIMIT items, as
    `notifications_create` arguments in the order given; or one ValidationError naming every
    problem, each item's by its place (`notifications[3].phone_number …`).

    One serializer validates every item in turn (as DRF's ListSerializer does with its child):
    making one per item would cost more than everything else a batch does.
    """
    if not isinstance(data, dict):
        raise serializers.ValidationError(
            f"Invalid data. Expected a dictionary, but got {type(data).__name__}."
        )
    errors: dict = {key: ["Additional properties are not allowed"] for key in data}
    errors.pop("notifications", None)
    items = data.get("notifications")
    if items is None:
        errors["notifications"] = ["is a required property"]
    elif not isinstance(items, list):
        errors["notifications"] = [f"must be a list, not {type(items).__name__}"]
    elif not 0 < len(items) <= BATCH_LIMIT:
        errors["notifications"] = [f"must hold 1 to {BATCH_LIMIT} notifications, not {len(items)}"]
    if errors:
        raise serializers.ValidationError(errors)
    child = item_serializer()
    accepted = []
    for place, item in enumerate(items):
        try:
            accepted.append(child.notification_fields(child.run_validation(item)))
        except serializers.ValidationError as err:
            errors[f"notifications[{place}]"] = err.detail
    if errors:
        raise serializers.ValidationError(errors)
    return accepted


class SmsBatchRequestSerializer(serializers.Serializer):
    """The schema of `POST /notifications/sms/batch` (validated by `batch_items_validate`)."""

    notifications = SmsRequestSerializer(many=True, min_length=1, max_length=BATCH_LIMIT)


class EmailBatchRequestSerializer(serializers.Serializer):
    notifications = EmailRequestSerializer(many=True, min_length=1, max_length=BATCH_LIMIT)


class NotificationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(source="notification_type", choices=NotificationType.choices)
    phone_number = serializers.CharField(source="recipient", required=False)
    email_address = serializers.CharField(source="recipient", required=False)
    subject = serializers.CharField(required=False)
    content = serializers.CharField()
    reference = serializers.CharField(source="client_reference", allow_null=True)
    status = serializers.ChoiceField(choices=NotificationStatus.choices)
    sent_by = serializers.CharField(allow_null=True)
    fragment_count = serializers.IntegerField(
        allow_null=True, help_text="SMS parts the text is sent and billed as; null for an email"
    )
    created_at = serializers.DateTimeField(default_timezone=UTC)
    sent_at = serializers.DateTimeField(default_timezone=UTC, allow_null=True)
    updated_at = serializers.DateTimeField(default_timezone=UTC)

    def to_representation(self, instance: Notification) -> dict:
        """What DRF makes of the fields above, through the same fields' `to_representation`,
        without DRF's deep copy and binding of every declared field for each serializer (a
        seventh of a create's CPU, bench/README.md). Equal to `fields_representation`
        (tests/sending/test_api_keys.py)."""
        data = {}
        for name, attribute, field in _declared_plan(type(self)):
            value = getattr(instance, attribute)
            data[name] = None if value is None else field.to_representation(value)
        return self._for_type(instance, data)

    def fields_representation(self, instance: Notification) -> dict:
        """The same through DRF's bound fields (the slow way, for the tests)."""
        return self._for_type(instance, super().to_representation(instance))

    @staticmethod
    def _for_type(instance: Notification, data: dict) -> dict:
        not_for_this_type = (
            ("email_address", "subject")
            if instance.notification_type == NotificationType.SMS
            else ("phone_number",)
        )
        for key in not_for_this_type:
            data.pop(key, None)
        return data


@functools.cache
def _declared_plan(serializer_class) -> list[tuple[str, str, serializers.Field]]:
    """(answer key, model attribute, field) of each declared field, in order. Only plain
    attribute sources: a dotted or `*` source would need DRF's own lookup."""
    plan = []
    for name, field in serializer_class._declared_fields.items():
        attribute = field.source or name
        if "." in attribute or attribute == "*" or field.write_only:
            raise ImproperlyConfigured(f"{serializer_class.__name__}.{name}: not a plain source")
        plan.append((name, attribute, field))
    return plan


class NotificationFilterSerializer(StrictSerializer):
    status = serializers.ChoiceField(choices=NotificationStatus.choices, required=False)
    type = serializers.ChoiceField(choices=NotificationType.choices, required=False)
    reference = TextField(required=False, max_length=255, one_line=True)
    cursor = serializers.CharField(
        required=False, help_text="opaque: the next page's, as links.next gives it"
    )


class NotificationBatchSerializer(serializers.Serializer):
    notifications = NotificationSerializer(many=True)
