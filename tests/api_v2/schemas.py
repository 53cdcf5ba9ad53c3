"""What the /v2 answers must look like: contract section 11, which follows the response schemas
GOV.UK Notify's official clients are tested against. Every listed field is required here (the
contract names each), so a missing one fails."""

from jsonschema import Draft7Validator

UUID = {
    "type": "string",
    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}
ABSOLUTE_URL = {"type": "string", "pattern": "^https?://[^/]+/v2/"}
TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"}
NULL = {"type": "null"}


def _object(properties: dict, **more) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties), **more}


TEMPLATE_LINK = _object(
    {"id": UUID, "version": {"type": "integer", "minimum": 1}, "uri": ABSOLUTE_URL},
    additionalProperties=False,
)

POST_SMS = _object(
    {
        "id": UUID,
        "reference": {"type": ["string", "null"]},
        "content": _object(
            {"body": {"type": "string"}, "from_number": {"type": "string"}},
            additionalProperties=False,
        ),
        "uri": ABSOLUTE_URL,
        "template": TEMPLATE_LINK,
        "scheduled_for": NULL,
    },
    additionalProperties=False,
)

POST_EMAIL = _object(
    {
        "id": UUID,
        "reference": {"type": ["string", "null"]},
        "content": _object(
            {
                "body": {"type": "string"},
                "subject": {"type": "string"},
                "from_email": {"type": "string", "pattern": "@"},
                "one_click_unsubscribe_url": {"type": ["string", "null"]},
            },
            additionalProperties=False,
        ),
        "uri": ABSOLUTE_URL,
        "template": TEMPLATE_LINK,
        "scheduled_for": NULL,
        "sanitised_content": {
            "type": "object",
            "additionalProperties": _object(
                {"unsanitised": {"type": "string"}, "sanitised": {"type": "string"}}
            ),
        },
    },
    additionalProperties=False,
)

LETTER_FIELDS = ("line_1", "line_2", "line_3", "line_4", "line_5", "line_6", "postcode", "postage")

GET_NOTIFICATION = _object(
    {
        "id": UUID,
        "reference": {"type": ["string", "null"]},
        "email_address": {"type": ["string", "null"]},
        "phone_number": {"type": ["string", "null"]},
        **{name: NULL for name in LETTER_FIELDS},
        "type": {"enum": ["sms", "email"]},
        "status": {
            "enum": [
                "created",
                "sending",
                "pending",
                "delivered",
                "permanent-failure",
                "temporary-failure",
                "technical-failure",
            ]
        },
        "template": TEMPLATE_LINK,
        "body": {"type": "string"},
        "subject": {"type": ["string", "null"]},
        "created_at": TIME,
        "created_by_name": NULL,
        "sent_at": {"anyOf": [TIME, NULL]},
        "completed_at": {"anyOf": [TIME, NULL]},
        "scheduled_for": NULL,
    },
    additionalProperties=False,
)

GET_NOTIFICATIONS = _object(
    {
        "notifications": {"type": "array", "items": GET_NOTIFICATION, "maxItems": 250},
        "links": {
            "type": "object",
            "properties": {"current": ABSOLUTE_URL, "next": ABSOLUTE_URL},
            "required": ["current"],
            "additionalProperties": False,
        },
    },
    additionalProperties=False,
)

TEMPLATE = _object(
    {
        "id": UUID,
        "name": {"type": "string"},
        "type": {"enum": ["sms", "email"]},
        "created_at": TIME,
        "updated_at": {"anyOf": [TIME, NULL]},
        "created_by": {"type": "string"},
        "version": {"type": "integer", "minimum": 1},
        "body": {"type": "string"},
        "subject": {"type": ["string", "null"]},
        "letter_contact_block": NULL,
        "postage": NULL,
    },
    additionalProperties=False,
)

TEMPLATES = _object({"templates": {"type": "array", "items": TEMPLATE}}, additionalProperties=False)

PREVIEW = _object(
    {
        "id": UUID,
        "type": {"enum": ["sms", "email"]},
        "version": {"type": "integer", "minimum": 1},
        "body": {"type": "string"},
        "subject": {"type": ["string", "null"]},
        "html": {"type": ["string", "null"]},
    },
    additionalProperties=False,
)

RECEIVED_TEXT = _object(
    {
        "id": UUID,
        "user_number": {"type": "string"},
        "notify_number": {"type": "string"},
        "created_at": TIME,
        "service_id": UUID,
        "content": {"type": "string"},
    },
    additionalProperties=False,
)
RECEIVED_TEXTS = _object(
    {
        "received_text_messages": {"type": "array", "items": RECEIVED_TEXT},
        "links": {
            "type": "object",
            "properties": {"current": ABSOLUTE_URL, "next": ABSOLUTE_URL},
            "required": ["current"],
            "additionalProperties": False,
        },
    },
    additionalProperties=False,
)

ERROR = _object(
    {
        "status_code": {"type": "integer"},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": _object({"error": {"type": "string"}, "message": {"type": "string"}}),
        },
    },
    additionalProperties=False,
)


def assert_matches(answer, schema) -> None:
    problems = [
        f"{'/'.join(map(str, e.path))}: {e.message}"
        for e in Draft7Validator(schema).iter_errors(answer)
    ]
    assert not problems, problems
