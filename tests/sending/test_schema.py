"""The OpenAPI schema states every error answer and every limit the API enforces (issue 10);
tests/test_schema_fuzz.py holds the API to it."""

import re

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from sending.phone_numbers import PHONE_NUMBER_PATTERN, InvalidPhoneNumber, normalise_phone_number


@pytest.fixture(scope="module")
def schema():
    return Client().get("/openapi.json").json()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_operation_states_its_error_answers_in_the_error_shape(schema):
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, method, operation in operations(schema):
        # The /v2 API refuses every bad token 403 AuthError, as GOV.UK Notify does.
        expected = (
            {"400", "403", "429"} if path.startswith("/v2/") else {"400", "401", "403", "429"}
        )
        expected |= {"411", "413", "415"} if method in {"post", "put", "patch"} else set()
        expected |= {"404"} if "{" in path else set()
        responses = operation["responses"]
        assert expected <= set(responses), (method, path)
        for code, response in responses.items():
            if code.startswith("4"):
                assert response["content"] == error, (method, path, code)
    assert schema["components"]["schemas"]["Error"]["required"] == ["status_code", "errors"]


def test_request_bodies_state_their_limits(schema):
    sms = schema["components"]["schemas"]["SmsRequest"]
    email = schema["components"]["schemas"]["EmailRequest"]
    assert sms["additionalProperties"] is False and email["additionalProperties"] is False
    assert sms["properties"]["phone_number"]["pattern"] == PHONE_NUMBER_PATTERN
    assert sms["properties"]["content"]["maxLength"] == 918
    assert sms["properties"]["reference"]["maxLength"] == 255
    assert (
        email["properties"]["email_address"] | {"format": "email", "maxLength": 320}
        == (email["properties"]["email_address"])
    )
    assert email["properties"]["subject"]["maxLength"] == 998
    for field in (sms["properties"]["content"], email["properties"]["subject"]):
        assert field["minLength"] == 1
        assert not re.search(field["pattern"], " \t\u3000\x1c")
        assert not re.search(field["pattern"], "a\x00")


SEPARATORS = " -().\t\x1c\u00a0"


@given(
    st.text(alphabet="0123456789+" + SEPARATORS + "a²٧", max_size=20)
    | st.sampled_from(["07700900123", "+447700900123", "0044 7700 900123", "+1 202 555 0147"])
)
def test_the_phone_number_pattern_accepts_exactly_what_the_api_accepts(raw):
    try:
        normalise_phone_number(raw)
        accepted = True
    except InvalidPhoneNumber:
        accepted = False
    assert bool(re.match(PHONE_NUMBER_PATTERN, raw)) == accepted


@pytest.mark.parametrize("raw", ["07700 90012²", "+٤٤7700900123", "07700９00123"])
def test_digits_other_than_ascii_are_refused(raw):
    with pytest.raises(InvalidPhoneNumber, match="Must not contain letters or symbols"):
        normalise_phone_number(raw)


def test_every_v2_path_of_the_urlconf_is_in_the_schema_behind_the_jwt(schema):
    from django.urls import URLResolver, get_resolver

    def routes(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    routed = {
        "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        for route in routes(get_resolver().url_patterns)
        if route.startswith("v2/")
    }
    listed = {path for path in schema["paths"] if path.startswith("/v2/")}
    assert routed == listed
    assert (
        schema["components"]["securitySchemes"]["notifyJwt"]
        | {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
        }
        == schema["components"]["securitySchemes"]["notifyJwt"]
    )
    for path, method, operation in operations(schema):
        if path.startswith("/v2/"):
            assert operation["security"] == [{"notifyJwt": []}], (method, path)
            assert "401" not in operation["responses"], (method, path)  # Notify answers 403


def test_v2_requests_and_answers_are_stated(schema):
    components = schema["components"]["schemas"]
    sms = components["SmsV2Request"]
    assert sms["required"] == ["phone_number", "template_id"]
    assert sms["properties"]["phone_number"]["pattern"] == PHONE_NUMBER_PATTERN
    assert sms["properties"]["template_id"]["format"] == "uuid"
    created = schema["paths"]["/v2/notifications/sms"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/V2SmsCreated"
    }
    assert set(components["V2SmsCreated"]["required"]) == {
        "id", "reference", "content", "uri", "template", "scheduled_for"
    }  # fmt: skip
    assert set(components["V2Notification"]["properties"]) >= {"line_1", "postage", "body"}
    version = schema["paths"]["/v2/template/{template_id}/version/{version}"]["get"]
    [_, number] = version["parameters"]
    assert number["schema"] == {"type": "integer", "minimum": 1}
