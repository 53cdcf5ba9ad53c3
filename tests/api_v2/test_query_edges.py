"""Queries and paths at the edges the OpenAPI schema states (found by fuzzing /v2 once it was
in the schema): an empty query value is refused, not ignored."""

import pytest
import requests
from notifications_python_client import authentication

pytestmark = pytest.mark.django_db(transaction=True)


def v2_get(v2, path: str) -> requests.Response:
    token = authentication.create_jwt_token(v2.key[-36:], str(v2.service.id))
    return requests.get(f"{v2.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v2/notifications?older_than=", "older_than"),
        ("/v2/notifications?template_type=", "template_type"),
        ("/v2/notifications?reference=", "reference"),
        ("/v2/templates?type=", "type"),
    ],
)
def test_an_empty_query_value_is_refused_naming_it(v2, path, field):
    answer = v2_get(v2, path)
    assert answer.status_code == 400, answer.text
    [error] = answer.json()["errors"]
    assert error["error"] == "ValidationError" and error["message"].startswith(f"{field} ")


def test_letters_are_still_named_as_not_offered_in_a_query(v2):
    answer = v2_get(v2, "/v2/notifications?template_type=letter")
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {
            "error": "BadRequestError",
            "message": "Letters are not supported: this service sends text messages and emails",
        }
    ]
