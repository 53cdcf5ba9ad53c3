"""Keys in GOV.UK Notify's form and the /v2 API's JSON Web Tokens, over real HTTP."""

import hashlib
import logging
import math
import re
import time
import uuid

import jwt
import pytest
import requests
from django.utils import timezone
from notifications_python_client import authentication
from notifications_python_client.errors import HTTPError

from sending.api_keys import api_keys_revoke
from sending.models import ApiKey, Service
from tests.api_v2 import schemas

pytestmark = pytest.mark.django_db(transaction=True)

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def refused(raised) -> str:
    body = raised.value.response.json()
    schemas.assert_matches(body, schemas.ERROR)
    assert raised.value.status_code == 403 and body["status_code"] == 403
    [error] = body["errors"]
    assert error["error"] == "AuthError"
    return error["message"]


def v2_get(v2, headers: dict) -> requests.Response:
    return requests.get(f"{v2.url}/v2/notifications", headers=headers, timeout=10)


def test_the_key_string_has_notifys_form_and_the_client_reads_the_service_from_it(v2):
    assert re.fullmatch(f"live_key-{v2.service.id}-{UUID}", v2.key)
    assert v2.client.service_id == str(v2.service.id)
    assert v2.client.get_all_notifications()["notifications"] == []


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Invalid token: no token (send 'Authorization: Bearer <JWT>')"),
        (
            {"Authorization": "Bearer"},
            "Invalid token: no token (send 'Authorization: Bearer <JWT>')",
        ),
        (
            {"Authorization": "Basic dXNlcjpwYXNz"},
            "Invalid token: no token (send 'Authorization: Bearer <JWT>')",
        ),
        ({"Authorization": "Bearer not-a-jwt"}, "Invalid token: not a JWT"),
    ],
)
def test_a_request_without_a_jwt_is_refused_naming_why(v2, headers, message):
    answer = v2_get(v2, headers)
    assert answer.status_code == 403
    assert answer.json() == {
        "status_code": 403,
        "errors": [{"error": "AuthError", "message": message}],
    }


def test_the_section_4_key_string_itself_is_not_a_jwt(v2):
    answer = v2_get(v2, {"Authorization": f"Bearer {v2.key}"})
    assert answer.json()["errors"][0]["message"] == "Invalid token: not a JWT"


def test_a_token_signed_with_another_secret_is_refused(v2):
    forged = v2.key[:-36] + str(uuid.uuid4())
    with pytest.raises(HTTPError) as raised:
        v2.client_for(forged).get_all_notifications()
    assert refused(raised) == "Invalid token: signature does not match an API key of the service"


def test_a_token_from_an_unknown_issuer_is_refused(v2):
    stranger = f"key-{uuid.uuid4()}-{v2.key[-36:]}"
    with pytest.raises(HTTPError) as raised:
        v2.client_for(stranger).get_all_notifications()
    assert refused(raised) == "Invalid token: unknown issuer"
    token = jwt.encode({"iss": "not a uuid", "iat": int(time.time())}, "x" * 36, algorithm="HS256")
    answer = v2_get(v2, {"Authorization": f"Bearer {token}"})
    assert answer.json()["errors"][0]["message"] == "Invalid token: unknown issuer"


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (-90, "Invalid token: expired (issued more than 30 seconds ago)"),
        (
            90,
            "Invalid token: in the future (issued more than 30 seconds from now: check the clock)",
        ),
    ],
)
def test_a_token_issued_more_than_30_seconds_away_is_refused(v2, monkeypatch, offset, message):
    monkeypatch.setattr(authentication, "epoch_seconds", lambda: int(time.time()) + offset)
    with pytest.raises(HTTPError) as raised:
        v2.client.get_all_notifications()
    assert refused(raised) == message


def test_a_token_issued_within_30_seconds_either_way_is_accepted(v2, monkeypatch):
    for offset in (-20, 20):
        monkeypatch.setattr(authentication, "epoch_seconds", lambda o=offset: int(time.time()) + o)
        assert v2.client.get_all_notifications() == {
            "notifications": [],
            "links": {"current": f"{v2.url}/v2/notifications"},
        }


def test_a_revoked_keys_tokens_are_refused_and_the_other_keys_still_work(v2):
    _, second = ApiKey.issue(v2.service, name="second")
    ApiKey.objects.filter(name="live_key").update(revoked_at=timezone.now())
    with pytest.raises(HTTPError) as raised:
        v2.client.get_all_notifications()
    assert refused(raised) == "Invalid token: API key revoked"
    assert v2.client_for(second).get_all_notifications()["notifications"] == []


def test_keys_are_cached_yet_a_new_key_works_and_a_revoked_or_deleted_one_fails_at_once(v2):
    """The signing keys and the key itself are cached between requests (issue 15's speed);
    the cache never lets a revoked or deleted key in, nor keeps a new one out."""
    assert v2.client.get_all_notifications()["notifications"] == []  # the caches are warm now
    new, secret = ApiKey.issue(v2.service, name="made later")
    assert v2.client_for(secret).get_all_notifications()["notifications"] == []

    api_keys_revoke(keys=ApiKey.objects.filter(id=new.id))
    with pytest.raises(HTTPError) as raised:
        v2.client_for(secret).get_all_notifications()
    assert refused(raised) == "Invalid token: API key revoked"

    ApiKey.objects.get(name="live_key").delete()
    with pytest.raises(HTTPError) as raised:
        v2.client.get_all_notifications()
    assert refused(raised) == "Invalid token: signature does not match an API key of the service"


@pytest.mark.parametrize(
    ("claims", "algorithm", "message"),
    [
        ({"iat": "now"}, "HS256", "Invalid token: no iss (the service id) in the token"),
        ({"iss": "SERVICE"}, "HS256", "Invalid token: no iat (issued at) in the token"),
        (
            {"iss": "SERVICE", "iat": "soon"},
            "HS256",
            "Invalid token: iat must be a number of seconds since the epoch",
        ),
        ({"iss": "SERVICE", "iat": "now"}, "HS512", "Invalid token: algorithm must be HS256"),
        ({"iss": "SERVICE", "iat": "now"}, "none", "Invalid token: algorithm must be HS256"),
    ],
)
def test_a_token_with_missing_or_wrong_claims_is_refused(v2, claims, algorithm, message):
    values = {"SERVICE": str(v2.service.id), "now": int(time.time())}
    claims = {k: values.get(v, v) for k, v in claims.items()}
    secret = {"none": None, "HS512": "x" * 64}.get(algorithm, v2.key[-36:])
    token = jwt.encode(claims, secret, algorithm=algorithm)
    answer = v2_get(v2, {"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert answer.json()["errors"] == [{"error": "AuthError", "message": message}]


NOT_A_TIME = "Invalid token: {claim} must be a number of seconds since the epoch"


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        # NaN compares false with everything: such a token never expired (issue 20).
        ({"iat": math.nan}, NOT_A_TIME.format(claim="iat")),
        ({"iat": math.inf}, NOT_A_TIME.format(claim="iat")),
        ({"iat": -math.inf}, NOT_A_TIME.format(claim="iat")),
        ({"iat": 10**400}, NOT_A_TIME.format(claim="iat")),  # too large for a float: was a 500
        ({"iat": True}, NOT_A_TIME.format(claim="iat")),
        ({"exp": -60}, "Invalid token: expired (its exp has passed)"),
        ({"exp": math.nan}, NOT_A_TIME.format(claim="exp")),
        ({"exp": "tomorrow"}, NOT_A_TIME.format(claim="exp")),
        ({"exp": math.inf}, NOT_A_TIME.format(claim="exp")),
    ],
)
def test_a_token_whose_iat_is_not_a_finite_number_or_whose_exp_has_passed_is_refused(
    v2, claims, message
):
    now = int(time.time())
    claims = {"iss": str(v2.service.id), "iat": now} | {
        name: now + value if name == "exp" and isinstance(value, int) else value
        for name, value in claims.items()
    }
    token = jwt.encode(claims, v2.key[-36:], algorithm="HS256")
    answer = v2_get(v2, {"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
    assert answer.json()["errors"] == [{"error": "AuthError", "message": message}]


def test_a_token_whose_exp_is_still_to_come_is_accepted(v2):
    now = int(time.time())
    claims = {"iss": str(v2.service.id), "iat": now, "exp": now + 60}
    token = jwt.encode(claims, v2.key[-36:], algorithm="HS256")
    assert v2_get(v2, {"Authorization": f"Bearer {token}"}).status_code == 200


def test_no_refusal_logs_the_token_or_the_secret(v2, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(authentication, "epoch_seconds", lambda: int(time.time()) - 90)
    token = authentication.create_jwt_token(v2.key[-36:], str(v2.service.id))
    v2_get(v2, {"Authorization": f"Bearer {token}"})
    v2_get(v2, {"Authorization": f"Bearer {token[:-3]}abc"})
    assert "v2 token refused" in caplog.text
    for secret in (token, token.rsplit(".", 1)[1], v2.key[-36:]):
        assert secret not in caplog.text


def test_a_key_made_before_notify_style_keys_works_on_section_4_only(v2):
    """Keys stored as a hash alone (before this change) can't sign tokens: no secret is kept."""
    legacy_service = Service.objects.create(name="Legacy")
    legacy = "an-old-style-key-of-43-url-safe-characters"
    ApiKey.objects.create(
        service=legacy_service,
        key_hash=hashlib.sha256(legacy.encode()).hexdigest(),
        prefix=legacy[:6],
    )
    plain = requests.get(
        f"{v2.url}/notifications", timeout=10, headers={"Authorization": f"Bearer {legacy}"}
    )
    assert plain.status_code == 200
    token = jwt.encode(
        {"iss": str(legacy_service.id), "iat": int(time.time())}, legacy, algorithm="HS256"
    )
    answer = v2_get(v2, {"Authorization": f"Bearer {token}"})
    assert answer.json()["errors"][0]["message"] == "Invalid token: unknown issuer"


def test_a_jwt_is_not_a_section_4_key(v2):
    token = authentication.create_jwt_token(v2.key[-36:], str(v2.service.id))
    plain = requests.get(
        f"{v2.url}/notifications", timeout=10, headers={"Authorization": f"Bearer {token}"}
    )
    assert plain.status_code == 401
